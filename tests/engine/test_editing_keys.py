"""Reading keys and residuals at the subject's last token, averaged over templates, under a variant."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
import torch

from engine.adapters import linear_dims
from engine.components import LowRankDelta
from engine.editing.keys import read_fact_averages, subject_prompt, target_ids
from engine.editing.request import EditRequest
from engine.loading import LoadedModel
from engine.runtime import InterventionRuntime
from engine.sites import Site
from tests.engine.editing_support import TINY_TEMPLATES, merged, random_delta
from tests.fakes import tiny_gpt2_lm, tiny_lm

TEMPLATES = TINY_TEMPLATES
REQUESTS = [EditRequest("The capital of {} is", "France", " Rome"),
            EditRequest("{} jumps over the", "The quick brown fox", " cat"),
            EditRequest("Interpretability asks what {} computes", "a model", " nothing")]


@pytest.fixture(params=["llama", "gpt2"])
def lm(request: pytest.FixtureRequest) -> LoadedModel:
    return tiny_lm() if request.param == "llama" else tiny_gpt2_lm()


@pytest.fixture
def runtime(lm: LoadedModel) -> Iterator[InterventionRuntime]:
    with InterventionRuntime(lm).installed() as installed:
        yield installed


def test_the_subject_is_found_where_it_was_put_even_if_the_template_names_it_too(lm: LoadedModel) -> None:
    p = subject_prompt(lm.tokenizer, "France is a country. {}", "The capital of {} is", "France")
    encoded = lm.tokenizer("France is a country. The capital of France is", return_offsets_mapping=True)
    assert p.ids == list(encoded["input_ids"])
    start = len("France is a country. The capital of ")
    assert encoded["offset_mapping"][p.subject_last][1] == start + len("France")
    assert p.subject_last > 2  # not the template's "France"


def test_the_target_tokens_are_those_that_follow_the_prompt(lm: LoadedModel) -> None:
    text = "The capital of France is"
    prompt = list(lm.tokenizer(text)["input_ids"])
    ids = target_ids(lm.tokenizer, prompt, text, " Rome")
    assert lm.tokenizer.decode(ids) == " Rome"
    assert list(lm.tokenizer(text + " Rome")["input_ids"]) == prompt + ids


def plain_reads(lm: LoadedModel, layer: int, deltas: Sequence[LowRankDelta] = ()) -> tuple[torch.Tensor, ...]:
    """Independent reference: each full prompt alone, plain hooks, the deltas merged into the weights."""
    module = lm.adapter.mlp_out(lm.adapter.blocks(lm.model)[layer])
    block = lm.adapter.blocks(lm.model)[layer]
    keys, residuals = [], []
    grabbed: dict[str, torch.Tensor] = {}
    handles = [module.register_forward_hook(lambda m, a, o: grabbed.__setitem__("key", a[0])),
               block.register_forward_hook(lambda m, a, o: grabbed.__setitem__(
                   "residual", o[0] if isinstance(o, tuple) else o))]
    try:
        with merged(lm, deltas), torch.no_grad():
            for request in REQUESTS:
                per_key, per_residual = [], []
                for template in TEMPLATES:
                    p = subject_prompt(lm.tokenizer, template, request.prompt, request.subject)
                    lm.model(torch.tensor([p.ids]))
                    per_key.append(grabbed["key"][0, p.subject_last].double())
                    per_residual.append(grabbed["residual"][0, p.subject_last].double())
                keys.append(torch.stack(per_key).mean(0))
                residuals.append(torch.stack(per_residual).mean(0))
    finally:
        for handle in handles:
            handle.remove()
    return torch.stack(keys).float(), torch.stack(residuals).float()


def test_keys_and_residuals_are_averaged_over_templates_at_the_subjects_last_token(
        lm: LoadedModel, runtime: InterventionRuntime) -> None:
    reads = read_fact_averages(lm, runtime, REQUESTS, TEMPLATES, key_layers=[1], residual_layers=[0, 1], batch_rows=4)
    keys, residuals = plain_reads(lm, 1)
    assert reads[Site("mlp_key", 1)].shape == (3, linear_dims(lm.adapter.mlp_out(lm.adapter.blocks(lm.model)[1]))[0])
    assert torch.allclose(reads[Site("mlp_key", 1)], keys, atol=1e-5)
    assert torch.allclose(reads[Site("residual", 1)], residuals, atol=1e-5)


def test_reads_run_on_the_variant_being_edited(lm: LoadedModel, runtime: InterventionRuntime) -> None:
    delta = random_delta(lm, 0, rank=2, seed=0)
    base = read_fact_averages(lm, runtime, REQUESTS, TEMPLATES, key_layers=[1], residual_layers=[1])
    edited = read_fact_averages(lm, runtime, REQUESTS, TEMPLATES, components=[delta], key_layers=[1],
                                residual_layers=[1])
    keys, residuals = plain_reads(lm, 1, [delta])
    assert not torch.allclose(base[Site("residual", 1)], edited[Site("residual", 1)], atol=1e-3)
    assert torch.allclose(edited[Site("mlp_key", 1)], keys, atol=1e-4)
    assert torch.allclose(edited[Site("residual", 1)], residuals, atol=1e-4)
