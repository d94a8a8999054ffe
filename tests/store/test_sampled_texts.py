"""The model's own texts kept on disk: context templates and corpus rounds, sampled once and reused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.editing.corpus import ROUND_ROWS
from store import sampled_texts
from store.sampled_texts import context_templates, model_dir, sampled_rounds
from tests.fakes import tiny_gpt2_lm, tiny_lm


def refuse(*args: object, **kwargs: object) -> list[str]:
    raise AssertionError("sampled again")


def test_templates_are_sampled_once_and_then_read_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = context_templates(tiny_lm(), tmp_path, seed=1)
    assert first[0] == "{}" and all(t.count("{}") == 1 for t in first)
    monkeypatch.setattr(sampled_texts, "sample_templates", refuse)
    assert context_templates(tiny_lm(), tmp_path, seed=1) == first


def test_the_same_seed_gives_the_same_templates_in_another_cache_and_another_seed_others(tmp_path: Path) -> None:
    a = context_templates(tiny_lm(), tmp_path / "a", seed=5)
    b = context_templates(tiny_lm(), tmp_path / "b", seed=5)
    c = context_templates(tiny_lm(), tmp_path / "a", seed=6)
    assert a == b and a != c


def test_each_model_has_its_own_templates_file(tmp_path: Path) -> None:
    llama = context_templates(tiny_lm(), tmp_path, seed=0)
    gpt2 = context_templates(tiny_gpt2_lm(), tmp_path, seed=0)
    assert llama != gpt2
    assert len(list(tmp_path.glob("*/templates-s0.json"))) == 2


@pytest.mark.parametrize("damage", ['{"format": 1, "seed": 2, "templates": ["no slot here"]}', "[1, 2]", "{torn"])
def test_a_damaged_template_file_is_sampled_again(tmp_path: Path, damage: str) -> None:
    first = context_templates(tiny_lm(), tmp_path, seed=2)
    (stored,) = tmp_path.glob("*/templates-s2.json")
    stored.write_text(damage)
    assert context_templates(tiny_lm(), tmp_path, seed=2) == first
    assert json.loads(stored.read_text())["templates"] == first  # and stored whole again


def test_the_templates_file_keeps_its_format(tmp_path: Path) -> None:
    lm = tiny_lm()
    templates = context_templates(lm, tmp_path, seed=3)
    stored = json.loads((model_dir(tmp_path, lm) / "templates-s3.json").read_text())
    assert stored == {"format": 1, "model": lm.name, "seed": 3, "templates": templates}


def test_a_models_files_are_keyed_by_its_name_source_and_configuration(tmp_path: Path) -> None:
    lm, other = tiny_lm(), tiny_gpt2_lm()
    assert model_dir(tmp_path, lm) == model_dir(tmp_path, tiny_lm())
    assert model_dir(tmp_path, lm).name.startswith(f"{lm.name}-")
    assert model_dir(tmp_path, lm) != model_dir(tmp_path, other)


def test_rounds_already_sampled_are_read_back_and_a_larger_sample_extends_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    lm = tiny_lm()
    first = list(sampled_rounds(lm, tmp_path, seed=4, min_tokens=1))
    assert len(first) == 1 and len(first[0]) == ROUND_ROWS
    path = model_dir(tmp_path, lm) / "corpus-self-s4.json"
    assert json.loads(path.read_text()) == {"format": 1, "model": lm.name, "seed": 4, "rounds": first}
    first_tokens = sum(len(lm.tokenizer(t)["input_ids"]) for t in first[0])
    longer = list(sampled_rounds(lm, tmp_path, seed=4, min_tokens=first_tokens + 1))
    assert len(longer) == 2 and longer[0] == first[0]  # the first round read back, a second one appended
    assert json.loads(path.read_text())["rounds"] == longer
    monkeypatch.setattr(sampled_texts, "sample_round", refuse)
    assert list(sampled_rounds(lm, tmp_path, seed=4, min_tokens=1)) == first
