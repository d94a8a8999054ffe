"""Sites and hooks (`engine.sites`, `engine.hooks`) on tiny random Llama and GPT-2 models, against the
model's own outputs and plain hooks written here as independent references."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch

from engine.hooks import patch, record
from engine.loading import LoadedModel
from engine.runtime import InterventionRuntime
from engine.sites import SITE_KINDS, Site, component_site, locate, mlp_out_names
from tests.fakes import tiny_gpt2_lm, tiny_lm

PROMPTS = ["The capital of France is Paris and the", "One, two, three,"]


@pytest.fixture(params=["llama", "gpt2"])
def lm(request: pytest.FixtureRequest) -> LoadedModel:
    return tiny_lm() if request.param == "llama" else tiny_gpt2_lm()


def batch(lm: LoadedModel) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids and mask ``[2, seq]`` of `PROMPTS`."""
    encoded = lm.tokenizer(PROMPTS, padding=True, return_tensors="pt")
    return encoded["input_ids"], encoded["attention_mask"]


def every_site(lm: LoadedModel, *kinds: str) -> list[Site]:
    return [Site(kind, layer) for kind in kinds or SITE_KINDS for layer in range(lm.n_layers)]  # type: ignore[arg-type]


def hooks_on(lm: LoadedModel) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in lm.model.modules())


@contextmanager
def counting_calls(modules: list[torch.nn.Module]) -> Iterator[list[int]]:
    """Independent reference: how often each module ran, from plain pre-hooks."""
    calls = [0] * len(modules)

    def counter(i: int):  # type: ignore[no-untyped-def]
        def hook(module: torch.nn.Module, args: object) -> None:
            calls[i] += 1
        return hook

    handles = [module.register_forward_pre_hook(counter(i)) for i, module in enumerate(modules)]
    try:
        yield calls
    finally:
        for handle in handles:
            handle.remove()


@torch.inference_mode()
def test_recorded_block_outputs_are_the_models_hidden_states(lm: LoadedModel) -> None:
    ids, mask = batch(lm)
    with record(lm, every_site(lm, "residual")) as recording:
        recording.run(lm.model, input_ids=ids, attention_mask=mask)
    states = lm.model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
    last = lm.n_layers - 1
    for layer in range(last):  # hidden_states[l + 1] is block l's output...
        assert torch.equal(recording.tensors[Site("residual", layer)], states[layer + 1])
    # ...but for the last block, whose entry transformers replaces with the final norm's output.
    normed = lm.adapter.final_norm(lm.model)(recording.tensors[Site("residual", last)])
    assert torch.allclose(normed, states[last + 1], atol=1e-6)


@torch.inference_mode()
def test_each_block_adds_its_attention_and_mlp_outputs_to_the_residual_stream(lm: LoadedModel) -> None:
    ids, mask = batch(lm)
    with record(lm, every_site(lm, "residual", "attention", "mlp")) as recording:
        recording.run(lm.model, input_ids=ids, attention_mask=mask)
    before = lm.model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[0]
    for layer in range(lm.n_layers):
        added = recording.tensors[Site("attention", layer)] + recording.tensors[Site("mlp", layer)]
        after = recording.tensors[Site("residual", layer)]
        assert torch.allclose(before + added, after, atol=1e-5)
        before = after


@torch.inference_mode()
def test_the_mlp_key_is_the_input_of_the_mlp_output_projection_and_the_value_its_output(lm: LoadedModel) -> None:
    ids, mask = batch(lm)
    grabbed: dict[int, torch.Tensor] = {}
    projections = [lm.adapter.mlp_out(block) for block in lm.adapter.blocks(lm.model)]
    handles = [p.register_forward_hook(lambda m, a, o, i=i: grabbed.__setitem__(i, a[0]))
               for i, p in enumerate(projections)]
    try:
        with record(lm, every_site(lm, "mlp_key", "mlp_value", "mlp")) as recording:
            recording.run(lm.model, input_ids=ids, attention_mask=mask)
    finally:
        for handle in handles:
            handle.remove()
    for layer, projection in enumerate(projections):
        key = recording.tensors[Site("mlp_key", layer)]
        assert torch.equal(key, grabbed[layer])
        assert torch.equal(recording.tensors[Site("mlp_value", layer)], projection(key))
        assert torch.equal(recording.tensors[Site("mlp_value", layer)], recording.tensors[Site("mlp", layer)])


@torch.inference_mode()
def test_a_recording_stops_the_pass_after_its_last_site_and_runs_nothing_later(lm: LoadedModel) -> None:
    ids, mask = batch(lm)
    blocks = list(lm.adapter.blocks(lm.model))
    head = lm.adapter.unembedding(lm.model)
    with counting_calls([*blocks, head]) as calls, record(lm, [Site("mlp_key", 0)]) as recording:
        assert recording.run(lm.model, input_ids=ids, attention_mask=mask) is None
    assert calls == [1] + [0] * (len(blocks) - 1) + [0]
    with counting_calls([*blocks, head]) as calls, record(lm, every_site(lm, "residual"), stop=False) as recording:
        assert recording.run(lm.model, input_ids=ids, attention_mask=mask) is not None
    assert calls == [1] * (len(blocks) + 1)


@torch.inference_mode()
def test_positions_keep_those_rows_and_tokens_of_the_full_recording(lm: LoadedModel) -> None:
    ids, mask = batch(lm)
    sites = every_site(lm, "residual", "mlp_key")
    with record(lm, sites) as full:
        full.run(lm.model, input_ids=ids, attention_mask=mask)
    positions = torch.tensor([3, 1])
    with record(lm, sites, positions=positions) as per_row:
        per_row.run(lm.model, input_ids=ids, attention_mask=mask)
    with record(lm, sites, positions=positions, rows=torch.tensor([1, 1])) as one_row:
        one_row.run(lm.model, input_ids=ids, attention_mask=mask)
    for site in sites:
        assert torch.equal(per_row.tensors[site], full.tensors[site][[0, 1], [3, 1]])
        assert torch.equal(one_row.tensors[site], full.tensors[site][1, [3, 1]])


@torch.inference_mode()
def test_a_pass_that_misses_a_site_is_refused(lm: LoadedModel) -> None:
    with record(lm, [Site("residual", 0)]) as recording, pytest.raises(RuntimeError, match="residual@0"):
        recording.run(lambda: None)
    with pytest.raises(ValueError, match="no site"), record(lm, []):
        pass


@pytest.mark.parametrize("stop", [True, False])
def test_hooks_are_removed_after_the_block_even_when_it_raises(lm: LoadedModel, stop: bool) -> None:
    ids, mask = batch(lm)
    before = hooks_on(lm)
    with pytest.raises(KeyError, match="boom"), record(lm, every_site(lm), stop=stop) as recording:
        assert hooks_on(lm) == before + len(every_site(lm))
        recording.run(lm.model, input_ids=ids, attention_mask=mask)
        raise KeyError("boom")
    assert hooks_on(lm) == before
    with pytest.raises(KeyError, match="boom"), patch(lm, {site: lambda h: None for site in every_site(lm)}):
        assert hooks_on(lm) == before + len(every_site(lm))
        raise KeyError("boom")
    assert hooks_on(lm) == before


@torch.inference_mode()
def test_a_recording_records_only_the_passes_it_runs_and_on_its_own_thread(lm: LoadedModel) -> None:
    ids, mask = batch(lm)
    plain = lm.model(input_ids=ids, attention_mask=mask).logits
    others: list[torch.Tensor] = []

    def other_thread() -> None:
        with torch.inference_mode():
            others.append(lm.model(input_ids=ids, attention_mask=mask).logits)

    def forward_beside_another_thread() -> None:
        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join()
        lm.model(input_ids=ids[1:], attention_mask=mask[1:])

    with record(lm, [Site("residual", 0)]) as recording:
        assert torch.equal(lm.model(input_ids=ids, attention_mask=mask).logits, plain)  # not run through it
        assert not recording.tensors
        recording.run(forward_beside_another_thread)
    # The other thread's pass ran to its end, unrecorded; the recording is of this thread's one row.
    assert torch.equal(others[0], plain)
    assert recording.tensors[Site("residual", 0)].shape[0] == 1


@torch.inference_mode()
def test_a_patch_acts_on_its_own_threads_passes_only(lm: LoadedModel) -> None:
    ids, mask = batch(lm)
    plain = lm.model(input_ids=ids, attention_mask=mask).logits
    others: list[torch.Tensor] = []

    def other_thread() -> None:
        with torch.inference_mode():
            others.append(lm.model(input_ids=ids, attention_mask=mask).logits)

    with patch(lm, {Site("mlp", 0): torch.zeros_like}):
        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join()
        patched = lm.model(input_ids=ids, attention_mask=mask).logits
    assert torch.equal(others[0], plain) and not torch.allclose(patched, plain)


@torch.inference_mode()
def test_a_patched_last_block_output_is_what_the_head_decodes(lm: LoadedModel) -> None:
    ids, mask = batch(lm)
    last = lm.n_layers - 1
    written = torch.randn(*ids.shape, lm.hidden_size, generator=torch.Generator().manual_seed(0))
    with patch(lm, {Site("residual", last): lambda hidden: written.to(hidden.dtype)}):
        logits = lm.model(input_ids=ids, attention_mask=mask).logits
    head, norm = lm.adapter.unembedding(lm.model), lm.adapter.final_norm(lm.model)
    assert torch.allclose(logits, head(norm(written)), atol=1e-5)


@torch.inference_mode()
def test_a_patched_mlp_key_is_what_the_output_projection_computes_on(lm: LoadedModel) -> None:
    ids, mask = batch(lm)
    projection = lm.adapter.mlp_out(lm.adapter.blocks(lm.model)[0])
    with record(lm, [Site("mlp_key", 0)]) as plain:
        plain.run(lm.model, input_ids=ids, attention_mask=mask)
    doubled = 2 * plain.tensors[Site("mlp_key", 0)]
    with patch(lm, {Site("mlp_key", 0): lambda key: 2 * key}), \
            record(lm, [Site("mlp_key", 0), Site("mlp_value", 0)]) as patched:
        patched.run(lm.model, input_ids=ids, attention_mask=mask)
    assert torch.equal(patched.tensors[Site("mlp_key", 0)], doubled)
    assert torch.allclose(patched.tensors[Site("mlp_value", 0)], projection(doubled), atol=1e-6)


def test_a_site_names_one_module_and_the_side_its_tensor_is_on(lm: LoadedModel) -> None:
    block = lm.adapter.blocks(lm.model)[1]
    assert locate(lm, Site("residual", 1)) == (block, "output")
    assert locate(lm, Site("attention", 1)) == (lm.adapter.attention(block), "output")
    assert locate(lm, Site("mlp", 1)) == (lm.adapter.mlp(block), "output")
    assert locate(lm, Site("mlp_key", 1)) == (lm.adapter.mlp_out(block), "input")
    assert locate(lm, Site("mlp_value", 1)) == (lm.adapter.mlp_out(block), "output")
    with pytest.raises(ValueError, match="outside"):
        locate(lm, Site("residual", lm.n_layers))
    with pytest.raises(ValueError, match="unknown site kind"):
        Site("logits", 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="block index"):
        Site("residual", -1)


def test_variant_components_name_the_runtimes_sites_as_they_are_stored(lm: LoadedModel) -> None:
    name = mlp_out_names(lm)[1]
    assert lm.model.get_submodule(name) is lm.adapter.mlp_out(lm.adapter.blocks(lm.model)[1])
    assert component_site(lm, Site("residual", 1)) == "block.1"
    assert component_site(lm, Site("mlp_value", 1)) == f"module.{name}"
    InterventionRuntime(lm).check_sites(component_site(lm, Site(kind, layer)) for kind in ("residual", "mlp_value")
                                        for layer in range(lm.n_layers))
    with pytest.raises(ValueError, match="residual and mlp_value"):
        component_site(lm, Site("mlp", 1))
