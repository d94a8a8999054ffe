"""Activation patching and causal tracing on tiny random models, against a one-forward-per-cell reference.

The reference is the plain way: for one restoration and one corrupted row, a full forward pass of
the corrupted input with hooks that write the clean activations. The batched engine (many
restorations per pass, starting at their token on a KV cache and joining at their first layer) must
agree with it, and must reproduce the clean run when everything is restored.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
import torch

from engine.hooks import embed, patch, record_sites
from engine.loading import LoadedModel
from engine.sites import Site, locate
from engine.tracing.activation_patching import activation_patching, first_difference
from engine.tracing.causal_trace import causal_trace, corrupt, embedding_std, subject_span
from engine.tracing.grid import answer_probability, cells, window_layers
from engine.tracing.patching import KINDS, CleanRun, Restoration, restore, run_corrupted
from tests.fakes import tiny_gpt2_lm, tiny_lm

PROMPT = "The capital of France is Paris and the"
OTHER = "Interpretability asks what a model computes, and how."


@pytest.fixture(params=["llama", "gpt2"])
def lm(request: pytest.FixtureRequest) -> LoadedModel:
    return tiny_lm() if request.param == "llama" else tiny_gpt2_lm()


def ids_of(lm: LoadedModel, text: str = PROMPT) -> list[int]:
    return list(lm.tokenizer(text)["input_ids"])


def clean_run(lm: LoadedModel, ids: list[int]) -> CleanRun:
    activations, logits = record_sites(lm, embed(lm, ids), list(KINDS))
    return CleanRun(activations, logits)


@torch.inference_mode()
def reference(lm: LoadedModel, clean: CleanRun, row: torch.Tensor, r: Restoration) -> torch.Tensor:
    """Last-position logits of one corrupted row ``[1, seq, hidden]`` with ``r`` written in by hooks."""

    def writer(layer: int):  # type: ignore[no-untyped-def]
        def fn(hidden: torch.Tensor) -> torch.Tensor:
            hidden = hidden.clone()
            hidden[:, list(r.tokens)] = clean.activations[r.kind][layer, list(r.tokens)]
            return hidden
        return fn

    with patch(lm, {Site(r.kind, layer): writer(layer) for layer in r.layers}):
        return lm.model(inputs_embeds=row, use_cache=False).logits[0, -1]


def hook_count(lm: LoadedModel) -> int:
    return sum(len(module._forward_hooks) for module in lm.model.modules())


def some_restorations(n_layers: int, seq: int) -> list[Restoration]:
    grid = cells(list(KINDS), list(range(n_layers)), list(range(seq)), 1, n_layers)
    return [*grid, Restoration("residual", (0, 1), tuple(range(seq))), Restoration("mlp", (1,), (3, 5)),
            Restoration("attention", (0, 1), (seq - 1,)), Restoration("mlp", (0, 1), (0, seq - 1))]


@pytest.mark.parametrize(("first", "max_rows"), [(0, None), (2, 7)])
def test_batched_restorations_equal_one_forward_per_restoration_and_row(
    lm: LoadedModel, first: int, max_rows: int | None
) -> None:
    ids = ids_of(lm)
    clean = clean_run(lm, ids)
    noised = corrupt(lm, ids, (first, first + 3), samples=3, scale=0.5, seed=0)
    corrupted = run_corrupted(lm, noised, first)
    restorations = some_restorations(lm.n_layers, len(ids))
    answer = int(clean.logits.argmax())
    got = restore(lm, clean, corrupted, restorations, reduce=answer_probability(answer), max_rows=max_rows)
    assert got.shape == (len(restorations), 3)
    for i, r in enumerate(restorations):
        for k in range(3):
            expected = torch.softmax(reference(lm, clean, noised[k : k + 1], r).float(), -1)[answer]
            assert abs(float(got[i, k]) - float(expected)) < 1e-6, (r, k)


def test_the_corrupted_run_computes_a_shared_prefix_once_and_matches_full_passes(lm: LoadedModel) -> None:
    ids = ids_of(lm)
    noised = corrupt(lm, ids, (3, 5), samples=2, scale=0.5, seed=1)
    shared = run_corrupted(lm, noised, 3)
    with torch.inference_mode():
        full = lm.model(inputs_embeds=noised, use_cache=False).logits[:, -1]
    assert torch.allclose(shared.logits, full, atol=1e-5)
    assert [k.shape[-2] for k in shared.keys] == [len(ids)] * lm.n_layers


def test_restoring_every_layer_at_every_token_recovers_the_clean_probability(lm: LoadedModel) -> None:
    ids = ids_of(lm)
    clean = clean_run(lm, ids)
    everything = [Restoration(kind, tuple(range(lm.n_layers)), tuple(range(len(ids)))) for kind in ("residual",)]
    corrupted = run_corrupted(lm, corrupt(lm, ids, (0, 4), samples=4, scale=1.0, seed=0), 0)
    answer = int(clean.logits.argmax())
    reduce = answer_probability(answer)
    p_clean = float(reduce(clean.logits[None])[0])
    assert float(reduce(corrupted.logits).max()) < p_clean or not torch.allclose(
        corrupted.logits, clean.logits.expand_as(corrupted.logits))
    restored = restore(lm, clean, corrupted, everything, reduce=reduce)
    assert torch.allclose(restored, torch.full_like(restored, p_clean), atol=1e-6)


@pytest.mark.parametrize("layer", [0, 1])
def test_patching_every_position_from_the_clean_run_reproduces_the_clean_output_exactly(
    lm: LoadedModel, layer: int
) -> None:
    clean_ids = ids_of(lm, "The capital of France is")
    corrupted_ids = ids_of(lm, OTHER)[: len(clean_ids)]
    assert len(clean_ids) == len(corrupted_ids)
    assert first_difference(clean_ids, corrupted_ids) == 0
    clean = clean_run(lm, clean_ids)
    corrupted = run_corrupted(lm, embed(lm, corrupted_ids), 0)
    assert not torch.equal(corrupted.logits[0], clean.logits)
    every_position = Restoration("residual", (layer,), tuple(range(len(clean_ids))))
    patched = restore(lm, clean, corrupted, [every_position], reduce=lambda logits: logits)
    assert torch.equal(patched[0, 0], clean.logits)  # the same computation, bit for bit


def test_patching_every_position_after_a_shared_prefix_reproduces_the_clean_output(lm: LoadedModel) -> None:
    clean_ids = ids_of(lm, "The capital of France is")
    corrupted_ids = clean_ids[:2] + ids_of(lm, OTHER)[2 : len(clean_ids)]
    clean = clean_run(lm, clean_ids)
    differ = first_difference(clean_ids, corrupted_ids)
    assert differ == 2
    corrupted = run_corrupted(lm, embed(lm, corrupted_ids), differ)
    patches = [Restoration("residual", (layer,), tuple(range(len(clean_ids)))) for layer in range(lm.n_layers)]
    patched = restore(lm, clean, corrupted, patches, reduce=lambda logits: logits)
    # From the first difference on, with the prefix from the cache: other kernel shapes, same numbers.
    assert torch.allclose(patched[:, 0], clean.logits.expand(lm.n_layers, -1), atol=1e-5)


def test_activation_patching_measures_the_clean_answer_and_changes_nothing_before_the_first_difference(
    lm: LoadedModel,
) -> None:
    clean_ids = ids_of(lm, "The capital of France is")
    corrupted_ids = clean_ids[:2] + ids_of(lm, OTHER)[2 : len(clean_ids)]
    answer = int(clean_run(lm, clean_ids).logits.argmax())
    result = activation_patching(lm, clean_ids, corrupted_ids, answer, kinds=list(KINDS), window=1)
    grid = result.grid
    assert result.first_difference == 2 and grid.tokens == list(range(len(clean_ids)))
    for kind in KINDS:
        before = grid.probabilities[kind][:, :2]
        assert torch.equal(before, grid.p_corrupted.expand_as(before))  # no-ops, not computed
    # Patching the last layer's residual at the last token gives the clean answer back.
    assert abs(float(grid.mean("residual")[-1, -1]) - grid.p_clean) < 1e-6
    noising = activation_patching(lm, clean_ids, corrupted_ids, answer, kinds=["residual"], direction="noising")
    assert noising.grid.p_clean == pytest.approx(grid.p_corrupted.item(), abs=1e-6)


def test_activation_patching_refuses_prompts_of_different_lengths(lm: LoadedModel) -> None:
    with pytest.raises(ValueError, match="same number of tokens"):
        activation_patching(lm, ids_of(lm, "The capital"), ids_of(lm, "The capital of France"), 5, kinds=["mlp"])


def test_the_window_is_the_one_of_meng_et_al() -> None:
    assert window_layers(0, 10, 30) == tuple(range(0, 5))
    assert window_layers(12, 10, 30) == tuple(range(7, 17))
    assert window_layers(29, 10, 30) == tuple(range(24, 30))
    assert window_layers(4, 1, 30) == (4,)
    assert window_layers(4, 3, 30) == (3, 4, 5)


def test_the_subject_span_covers_exactly_the_subjects_tokens(lm: LoadedModel) -> None:
    ids, (start, end) = subject_span(lm.tokenizer, PROMPT, "France")
    covered = lm.tokenizer.decode(ids[start:end])
    assert "France" in covered and "France" not in lm.tokenizer.decode(ids[:start] + ids[end:])
    assert end - start == min(e - s for s, e in [(start, end)])  # at least one token, contiguous
    with pytest.raises(ValueError, match="does not occur"):
        subject_span(lm.tokenizer, PROMPT, "Germany")


def test_noise_is_seeded_and_falls_only_on_the_subject(lm: LoadedModel) -> None:
    ids = ids_of(lm)
    a = corrupt(lm, ids, (2, 4), samples=64, scale=0.3, seed=7)
    b = corrupt(lm, ids, (2, 4), samples=64, scale=0.3, seed=7)
    base = embed(lm, ids)
    assert torch.equal(a, b)
    assert torch.equal(a[:, :2], base[:, :2].expand(64, -1, -1))
    assert torch.equal(a[:, 4:], base[:, 4:].expand(64, -1, -1))
    noise = a[:, 2:4] - base[:, 2:4]
    assert abs(float(noise.std()) - 0.3) < 0.02 and abs(float(noise.mean())) < 0.02
    weight = lm.adapter.embedding(lm.model).weight.double()
    assert embedding_std(lm) == pytest.approx(float(weight.std()))


def test_a_causal_trace_reports_progress_and_its_no_op_cells_exactly(lm: LoadedModel) -> None:
    ids = ids_of(lm)
    seen: list[tuple[int, int]] = []
    trace = causal_trace(lm, ids, (2, 4), int(clean_run(lm, ids).logits.argmax()), kinds=list(KINDS), samples=2,
                         window=1, max_rows=8, on_chunk=lambda done, total: seen.append((done, total)))
    grid = trace.grid
    assert grid.evaluations == 3 * lm.n_layers * (len(ids) - 2) * 2
    assert seen[-1][0] == seen[-1][1] == 3 * lm.n_layers * len(ids) * 2
    assert all(a[0] < b[0] for a, b in itertools.pairwise(seen))
    for kind in KINDS:  # tokens before the subject are identical in both runs
        assert torch.equal(grid.indirect_effect(kind)[:, :2], torch.zeros(lm.n_layers, 2))
    assert trace.noise_scale == pytest.approx(3 * embedding_std(lm))


class StopError(Exception):
    pass


def test_a_trace_stopped_between_passes_leaves_no_hook_behind(lm: LoadedModel) -> None:
    ids = ids_of(lm)
    before = hook_count(lm)

    def stop(done: int, total: int) -> None:
        raise StopError

    with pytest.raises(StopError):
        causal_trace(lm, ids, (0, 3), 5, kinds=["mlp"], samples=2, max_rows=4, on_chunk=stop)
    assert hook_count(lm) == before


def test_hooks_act_only_on_the_installing_threads_passes(lm: LoadedModel) -> None:
    import threading

    ids = ids_of(lm)
    touched: list[str] = []
    results: list[torch.Tensor] = []

    def other() -> None:
        with torch.inference_mode():
            results.append(lm.model(torch.tensor([ids]), use_cache=False).logits[0, -1])

    def zero(hidden: torch.Tensor) -> torch.Tensor:
        touched.append("x")
        return hidden * 0

    with patch(lm, {Site("mlp", 0): zero}):
        worker = threading.Thread(target=other)
        worker.start()
        worker.join()
    with torch.inference_mode():
        plain = lm.model(torch.tensor([ids]), use_cache=False).logits[0, -1]
    assert not touched and torch.equal(results[0], plain)
    assert locate(lm, Site("mlp", 0))[0] is lm.adapter.mlp(lm.adapter.blocks(lm.model)[0])


def test_invalid_grids_are_refused(lm: LoadedModel) -> None:
    ids = ids_of(lm)
    with pytest.raises(ValueError, match="kinds"):
        causal_trace(lm, ids, (0, 2), 5, kinds=["bogus"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="layers"):
        causal_trace(lm, ids, (0, 2), 5, kinds=["mlp"], layers=[lm.n_layers])
    with pytest.raises(ValueError, match="window"):
        causal_trace(lm, ids, (0, 2), 5, kinds=["mlp"], window=0)
    with pytest.raises(ValueError, match="subject span"):
        causal_trace(lm, ids, (3, 3), 5, kinds=["mlp"])
    with pytest.raises(ValueError, match="vocabulary"):
        causal_trace(lm, ids, (0, 2), 10**6, kinds=["mlp"])


@pytest.fixture(autouse=True)
def no_leftover_hooks(lm: LoadedModel) -> Iterator[None]:
    before = hook_count(lm)
    yield
    assert hook_count(lm) == before


@pytest.mark.parametrize("family", ["gpt2", "llama", "mistral", "qwen2", "gptj", "gpt_neox"])
def test_every_supported_family_traces_like_the_reference(family: str) -> None:
    from transformers import AutoModelForCausalLM

    from engine.adapters import adapter_for
    from tests.engine.test_adapters import FAMILIES, VOCAB
    from tests.fakes import tiny_tokenizer

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(FAMILIES[family].make_config()).eval().requires_grad_(False)
    lm = LoadedModel(name=family, source="test", model=model, tokenizer=tiny_tokenizer(), adapter=adapter_for(model))
    ids = torch.randint(0, VOCAB, (9,), generator=torch.Generator().manual_seed(2)).tolist()
    clean = clean_run(lm, ids)
    noised = embed(lm, ids).repeat(2, 1, 1)
    noised[:, 2:5] += torch.randn(2, 3, lm.hidden_size, generator=torch.Generator().manual_seed(3)) * 0.5
    restorations = cells(list(KINDS), list(range(lm.n_layers)), list(range(len(ids))), 2, lm.n_layers)
    got = restore(lm, clean, run_corrupted(lm, noised, 2), restorations, reduce=answer_probability(3), max_rows=9)
    for i, r in enumerate(restorations):
        for k in range(2):
            expected = torch.softmax(reference(lm, clean, noised[k : k + 1], r).float(), -1)[3]
            assert abs(float(got[i, k]) - float(expected)) < 1e-6, (r, k)
