"""Context templates: the model's own short texts, one slot each, reproducible for a seed."""

from __future__ import annotations

from engine.editing.context_templates import PREFIXES, ROUNDS, clean, sample_templates
from tests.fakes import tiny_gpt2_lm, tiny_lm


def test_templates_start_with_the_bare_prompt_and_each_holds_one_slot() -> None:
    templates = sample_templates(tiny_lm(), seed=0)
    assert templates[0] == "{}"
    assert len(templates) == 1 + len(PREFIXES) * len(ROUNDS)
    for template, prefix in zip(templates[1:], PREFIXES * len(ROUNDS), strict=True):
        assert template.count("{}") == 1 and template.endswith(". {}")
        assert template.startswith(prefix)
        assert "\n" not in template and template.format("x").count("x") >= 1  # str.format sees one slot


def test_the_same_seed_gives_the_same_templates_and_another_seed_others() -> None:
    assert sample_templates(tiny_lm(), seed=5) == sample_templates(tiny_lm(), seed=5)
    assert sample_templates(tiny_lm(), seed=5) != sample_templates(tiny_lm(), seed=6)


def test_each_model_writes_its_own_templates() -> None:
    assert sample_templates(tiny_lm(), seed=0) != sample_templates(tiny_gpt2_lm(), seed=0)


def test_a_cleaned_text_is_one_line_without_braces() -> None:
    assert clean("  a {b}\\n\n c}{  ") == "a b \\n c"
