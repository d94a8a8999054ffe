"""ROME on tiny Llama and GPT-2 layouts: the rank-one algebra, the r-ROME identity W' k* = v*, serving."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
import torch

from engine.adapters import linear_dims
from engine.components import Component
from engine.editing.covariance import KeyStatistics
from engine.editing.hparams import EditHyperparams, default_hparams, with_overrides
from engine.editing.request import EditRequest
from engine.editing.rome import compute_rome, module_output, rank_one_delta, rome_edit
from engine.loading import LoadedModel
from engine.pass_plan import PassPlan
from engine.progress import CanceledError
from engine.runtime import InterventionRuntime
from engine.sites import mlp_out_names
from store.statistics import StatisticsCache
from tests.engine.editing_support import TINY_TEMPLATES, editable_lm, hook_total, merged, random_delta
from tests.fakes import CORPUS

LAYER = 1
REQUEST = EditRequest("The capital of {}", "France", " fox")
PROMPTS = ["The capital of France", "France is a country. The capital of France", "One, two, three", "Hi"]


@pytest.fixture(scope="module", params=["llama", "gpt2"])
def lm(request: pytest.FixtureRequest) -> LoadedModel:
    return editable_lm(request.param)


@pytest.fixture(scope="module")
def runtime(lm: LoadedModel) -> Iterator[InterventionRuntime]:
    with InterventionRuntime(lm).installed() as installed:
        yield installed


@pytest.fixture(scope="module")
def stats(lm: LoadedModel, tmp_path_factory: pytest.TempPathFactory) -> KeyStatistics:
    corpus = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    corpus.write_text(" ".join(CORPUS * 8))
    return StatisticsCache(tmp_path_factory.mktemp("stats")).get_or_compute(lm, LAYER, samples=400, corpus=corpus)


def hparams(lm: LoadedModel, **overrides: object) -> EditHyperparams:
    base = default_hparams(lm.architecture, "rome", lm.n_layers)
    return with_overrides(base, {"layers": [LAYER], "v_lr": 5.0, "v_steps": 8, "v_weight_decay": 1e-3, **overrides})


def logits(lm: LoadedModel, runtime: InterventionRuntime | None, variant: Sequence[Component]) -> torch.Tensor:
    with torch.no_grad():
        if runtime is None:
            return torch.cat([lm.model(torch.tensor([lm.tokenizer(p)["input_ids"]])).logits[0] for p in PROMPTS])
        with runtime.active(PassPlan.of_variant(list(variant))):
            return torch.cat([lm.model(torch.tensor([lm.tokenizer(p)["input_ids"]])).logits[0] for p in PROMPTS])


def target_logprob(lm: LoadedModel, runtime: InterventionRuntime, variant: Sequence[Component]) -> float:
    ids = lm.tokenizer(REQUEST.text)["input_ids"]
    target = lm.tokenizer(REQUEST.target_new, add_special_tokens=False)["input_ids"][0]
    with torch.no_grad(), runtime.active(PassPlan.of_variant(list(variant))):
        return float(torch.log_softmax(lm.model(torch.tensor([ids])).logits[0, -1], -1)[target])


def test_the_rank_one_update_maps_the_key_to_the_value_and_leaves_c_orthogonal_keys_alone(
        lm: LoadedModel, runtime: InterventionRuntime) -> None:
    module = lm.adapter.mlp_out(lm.adapter.blocks(lm.model)[LAYER])
    n_in, n_out = linear_dims(module)
    g = torch.Generator().manual_seed(0)
    root = torch.randn(n_in, n_in, generator=g)
    c = root @ root.T / n_in + 0.1 * torch.eye(n_in)
    k, v = torch.randn(n_in, generator=g), torch.randn(n_out, generator=g) * 3
    current = module_output(lm, runtime, module, k, [])
    delta = rank_one_delta(mlp_out_names(lm)[LAYER], k, current, v, c)
    assert delta.rank == 1 and delta.a.shape == (1, n_in) and delta.b.shape == (n_out, 1)
    assert torch.allclose(module_output(lm, runtime, module, k, [delta]), v, atol=1e-4)
    # The closed form of the paper, computed independently in float64.
    c_inv_k = torch.linalg.inv(c.double()) @ k.double()
    closed = torch.outer(v.double() - current.double(), c_inv_k) / (k.double() @ c_inv_k)
    assert torch.allclose(delta.b.double() @ delta.a.double(), closed, atol=1e-5, rtol=1e-4)
    # A key x with x^T C^-1 k* = 0 is not changed by the edit.
    x = torch.randn(n_in, generator=g).double()
    x = x - (x @ c_inv_k) / (c_inv_k @ c_inv_k) * c_inv_k
    assert torch.allclose(module_output(lm, runtime, module, x.float(), [delta]),
                          module_output(lm, runtime, module, x.float(), []), atol=1e-4)


def test_the_edited_module_maps_the_averaged_key_exactly_to_the_target_value(
        lm: LoadedModel, runtime: InterventionRuntime, stats: KeyStatistics) -> None:
    edit = rome_edit(lm, runtime, REQUEST, hparams(lm), stats, TINY_TEMPLATES)
    module = lm.adapter.mlp_out(lm.adapter.blocks(lm.model)[LAYER])
    assert edit.delta.module == mlp_out_names(lm)[LAYER] and edit.delta.rank == 1
    assert torch.allclose(module_output(lm, runtime, module, edit.key, []), edit.current, atol=1e-6)
    assert torch.allclose(module_output(lm, runtime, module, edit.key, [edit.delta]), edit.value, atol=1e-4)
    assert float((edit.value - edit.current).norm()) > 1.0  # a real change, not a trivial identity
    assert target_logprob(lm, runtime, [edit.delta]) > target_logprob(lm, runtime, []) + 1.0


def test_serving_the_delta_through_the_runtime_equals_a_merged_weight_copy(
        lm: LoadedModel, runtime: InterventionRuntime, stats: KeyStatistics) -> None:
    delta = compute_rome(lm, runtime, REQUEST, hparams(lm), stats, TINY_TEMPLATES)
    served = logits(lm, runtime, [delta])
    with merged(lm, [delta]):
        reference = logits(lm, None, [])
    assert (served - reference).abs().max() < 1e-4
    assert (served - logits(lm, runtime, [])).abs().max() > 1e-2


def test_the_same_request_twice_gives_bit_identical_deltas(lm: LoadedModel, runtime: InterventionRuntime,
                                                           stats: KeyStatistics) -> None:
    first = compute_rome(lm, runtime, REQUEST, hparams(lm), stats, TINY_TEMPLATES)
    second = compute_rome(lm, runtime, REQUEST, hparams(lm), stats, TINY_TEMPLATES)
    assert torch.equal(first.a, second.a) and torch.equal(first.b, second.b)


def test_an_edit_on_a_parent_variant_reads_and_solves_on_that_variant(
        lm: LoadedModel, runtime: InterventionRuntime, stats: KeyStatistics) -> None:
    parent = [random_delta(lm, 0, rank=2, seed=1, scale=0.3), random_delta(lm, LAYER, rank=1, seed=2, scale=0.3)]
    edit = rome_edit(lm, runtime, REQUEST, hparams(lm), stats, TINY_TEMPLATES, parent=parent)
    base = rome_edit(lm, runtime, REQUEST, hparams(lm), stats, TINY_TEMPLATES)
    module = lm.adapter.mlp_out(lm.adapter.blocks(lm.model)[LAYER])
    assert not torch.allclose(edit.key, base.key, atol=1e-3)  # read on the parent (block 0 changed)
    assert torch.allclose(module_output(lm, runtime, module, edit.key, parent), edit.current, atol=1e-5)
    assert torch.allclose(module_output(lm, runtime, module, edit.key, [*parent, edit.delta]), edit.value, atol=1e-4)
    served = logits(lm, runtime, [*parent, edit.delta])
    with merged(lm, [*parent, edit.delta]):
        assert (served - logits(lm, None, [])).abs().max() < 1e-4


def test_progress_runs_to_the_end_and_a_stop_request_cancels(lm: LoadedModel, runtime: InterventionRuntime,
                                                             stats: KeyStatistics) -> None:
    hooks = hook_total(lm)
    seen: list[tuple[float, str]] = []
    compute_rome(lm, runtime, REQUEST, hparams(lm, v_steps=2), stats, TINY_TEMPLATES,
                 on_progress=lambda f, m: seen.append((f, m)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    with pytest.raises(CanceledError):
        compute_rome(lm, runtime, REQUEST, hparams(lm), stats, TINY_TEMPLATES, should_stop=lambda: True)
    assert hook_total(lm) == hooks  # nothing of ours left behind


def test_statistics_of_another_layer_or_two_layers_are_refused(lm: LoadedModel, runtime: InterventionRuntime,
                                                               stats: KeyStatistics) -> None:
    with pytest.raises(ValueError, match="statistics are of layer"):
        compute_rome(lm, runtime, REQUEST, hparams(lm, layers=[0]), stats, TINY_TEMPLATES)
    two = EditHyperparams(**{**hparams(lm).__dict__, "layers": (0, 1)})
    with pytest.raises(ValueError, match="exactly one layer"):
        compute_rome(lm, runtime, REQUEST, two, stats, TINY_TEMPLATES)

