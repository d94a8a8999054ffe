"""The editing benchmark's fact set: enough facts, each with its prompts, and a batch that cannot contradict itself."""

from __future__ import annotations

import json
from collections import Counter

from benchmarks.data.build_editing_facts import FACTS_PATH, RELATIONS, check_subjects, load_requests
from engine.editing.evaluation import starts_with_answer


def test_the_file_holds_at_least_50_facts_each_with_2_paraphrases_and_3_neighbours() -> None:
    facts = json.loads(FACTS_PATH.read_text())["facts"]
    assert len(facts) >= 50
    assert len(Counter(f["relation"] for f in facts)) >= 5
    for fact in facts:
        assert len(fact["paraphrases"]) == 2 and len(fact["neighborhood"]) == 3
        assert fact["target_new"] != fact["target_true"]
        assert all(fact["subject"] in p for p in fact["paraphrases"])
        assert all(n["answer"] != fact["target_new"] for n in fact["neighborhood"])


def test_every_fact_was_checked_by_what_the_model_said() -> None:
    for fact in json.loads(FACTS_PATH.read_text())["facts"]:
        checked = fact["checked"]
        assert starts_with_answer(checked["prompt"], fact["target_true"])
        assert all(starts_with_answer(said, n["answer"])
                   for said, n in zip(checked["neighborhood"], fact["neighborhood"], strict=True))
        assert checked["paraphrases_known"] == [starts_with_answer(s, fact["target_true"])
                                                for s in checked["paraphrases"]]


def test_no_subject_is_edited_twice_or_both_edited_and_a_neighbour() -> None:
    check_subjects(RELATIONS)
    requests = load_requests()
    assert len({r.subject for r in requests}) == len(requests)
    edited = {r.text for r in requests}
    assert not edited & {n.prompt for r in requests for n in r.neighborhood}


def test_the_facts_load_as_edit_requests_in_file_order() -> None:
    facts = json.loads(FACTS_PATH.read_text())["facts"]
    requests = load_requests(limit=5)
    assert [r.text for r in requests] == [f["prompt"].format(f["subject"]) for f in facts[:5]]
    assert requests[0].target_true == facts[0]["target_true"] and len(requests[0].neighborhood) == 3
