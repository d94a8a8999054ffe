"""Context templates: sampled from the model once per seed, stored, and reused."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.editing import context_templates as module
from engine.editing.context_templates import PREFIXES, ROUNDS, context_templates
from tests.fakes import tiny_gpt2_lm, tiny_lm


def test_templates_start_with_the_bare_prompt_and_each_holds_one_slot(tmp_path: Path) -> None:
    templates = context_templates(tiny_lm(), tmp_path, seed=0)
    assert templates[0] == "{}"
    assert len(templates) == 1 + len(PREFIXES) * len(ROUNDS)
    for template, prefix in zip(templates[1:], PREFIXES * len(ROUNDS), strict=True):
        assert template.count("{}") == 1 and template.endswith(". {}")
        assert template.startswith(prefix)
        assert "\n" not in template and template.format("x").count("x") >= 1  # str.format sees one slot


def test_templates_are_sampled_once_and_then_read_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = context_templates(tiny_lm(), tmp_path, seed=1)

    def refuse(*args: object, **kwargs: object) -> list[str]:
        raise AssertionError("sampled again")

    monkeypatch.setattr(module, "sample_templates", refuse)
    assert context_templates(tiny_lm(), tmp_path, seed=1) == first


def test_the_same_seed_gives_the_same_templates_and_another_seed_others(tmp_path: Path) -> None:
    a = context_templates(tiny_lm(), tmp_path / "a", seed=5)
    b = context_templates(tiny_lm(), tmp_path / "b", seed=5)
    c = context_templates(tiny_lm(), tmp_path / "a", seed=6)
    assert a == b and a != c


def test_each_model_has_its_own_templates(tmp_path: Path) -> None:
    llama = context_templates(tiny_lm(), tmp_path, seed=0)
    gpt2 = context_templates(tiny_gpt2_lm(), tmp_path, seed=0)
    assert llama != gpt2
    assert len(list(tmp_path.glob("*/templates-s0.json"))) == 2


def test_a_damaged_template_file_is_sampled_again(tmp_path: Path) -> None:
    first = context_templates(tiny_lm(), tmp_path, seed=2)
    (stored,) = tmp_path.glob("*/templates-s2.json")
    stored.write_text('{"format": 1, "seed": 2, "templates": ["no slot here"]}')
    assert context_templates(tiny_lm(), tmp_path, seed=2) == first
