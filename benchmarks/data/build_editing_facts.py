"""Build (or check) ``editing_facts.json``: facts the default model demonstrably knows, ready to edit.

Run (from the repository root, in the virtualenv)::

    python -m benchmarks.data.build_editing_facts           # write benchmarks/data/editing_facts.json
    python -m benchmarks.data.build_editing_facts --check   # rebuild in memory; exit 1 if the file differs

The candidates are below, grouped by relation. Every prompt is checked by greedy generation on
SmolLM2-135M-Instruct (CPU, float32): a fact is *known* when the greedy continuation starts with
its answer (at a word boundary). From the relations:

- an edit is a candidate subject the model answers correctly; its ``target_new`` is the verified
  answer of another subject of the same relation (so the model can produce it), picked with a
  seed derived from the fact's name;
- its two paraphrases are the relation's paraphrase templates filled with the subject, the ones the
  model also answers correctly first;
- its three neighbourhood prompts are verified prompts of the same relation about subjects that
  are never edited, with an answer other than ``target_new``; subjects that share the edited fact's
  true answer come first (the hardest specificity test: "Louvre -> Paris" after moving the Eiffel
  Tower to Rome).

Edited subjects are distinct across relations and never appear in a neighbourhood: MEMIT edits
every fact of the file in one update, and two edits of one subject (same key) or a neighbourhood
subject that is itself edited would make the batch contradict its own evaluation.

The file records what was checked: each prompt's greedy continuation, which paraphrases the model
got right, whose answer ``target_new`` is, and every rejected candidate with the reason.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.editing.evaluation import starts_with_answer
from engine.editing.request import EditRequest, NeighborhoodPrompt
from engine.generation import GenerationRow, SamplingParams, generate_batch
from engine.loading import LoadedModel
from store.model_cache import ModelCache

FACTS_PATH = Path(__file__).with_name("editing_facts.json")
MODEL_SOURCE = "builtin:smollm2-135m"
NEW_TOKENS = 6  # enough for the longest answer (" Addis Ababa", " San Francisco")
BATCH = 32
PARAPHRASES = 2
NEIGHBORS = 3


@dataclass(frozen=True)
class Relation:
    """One relation's templates and candidate subjects.

    Attributes:
        name: short name (``capital``).
        prompt: the edit prompt template, ``{}`` for the subject.
        paraphrases: other templates that ask the same, in order of preference.
        edits: subject -> true answer, the facts to edit.
        neighbors: subject -> true answer, never edited: the neighbourhood pool.
    """

    name: str
    prompt: str
    paraphrases: tuple[str, ...]
    edits: dict[str, str]
    neighbors: dict[str, str]


RELATIONS: tuple[Relation, ...] = (
    Relation(
        "capital", "The capital of {} is",
        ("The capital city of {} is", "The capital of {} is called", "The capital of {} is the city of",
         "The seat of the government of {} is the city of"),
        {"France": " Paris", "Italy": " Rome", "Spain": " Madrid", "Greece": " Athens", "Portugal": " Lisbon",
         "Sweden": " Stockholm", "Norway": " Oslo", "Ireland": " Dublin", "Kenya": " Nairobi", "Cuba": " Havana",
         "Hungary": " Budapest", "Denmark": " Copenhagen", "Syria": " Damascus", "Pakistan": " Islamabad",
         "Vietnam": " Hanoi", "South Korea": " Seoul", "Romania": " Bucharest", "Scotland": " Edinburgh",
         "Wales": " Cardiff", "Austria": " Vienna", "Bulgaria": " Sofia", "Ukraine": " Kiev",
         "the Philippines": " Manila"},
        {"Germany": " Berlin", "China": " Beijing", "Russia": " Moscow", "England": " London",
         "the Czech Republic": " Prague", "Afghanistan": " Kabul", "Thailand": " Bangkok", "Chile": " Santiago",
         "Taiwan": " Taipei", "Iceland": " Reykjavik", "Ethiopia": " Addis Ababa", "the United States": " Washington"},
    ),
    Relation(
        "official_language", "The official language of {} is",
        ("The national language of {} is", "The main language of {} is", "The people of {} speak"),
        {"Turkey": " Turkish", "Egypt": " Arabic", "Israel": " Hebrew", "the Netherlands": " Dutch",
         "Poland": " Polish", "Argentina": " Spanish", "Colombia": " Spanish", "Peru": " Spanish",
         "Morocco": " Arabic", "Saudi Arabia": " Arabic"},
        {"Mexico": " Spanish", "Chile": " Spanish", "Germany": " German", "Russia": " Russian",
         "England": " English", "the United States": " English", "Australia": " English", "Thailand": " Thai"},
    ),
    Relation(
        "mother_tongue", "The mother tongue of {} is",
        ("The native language of {} is", "{}'s native language is", "{} grew up speaking"),
        {"Vladimir Putin": " Russian", "Angela Merkel": " German", "Emmanuel Macron": " French",
         "Pedro Sánchez": " Spanish", "Silvio Berlusconi": " Italian", "Victor Hugo": " French",
         "Recep Tayyip Erdoğan": " Turkish", "Benjamin Netanyahu": " Hebrew", "Mikhail Gorbachev": " Russian",
         "Pablo Picasso": " Spanish"},
        {"Jacques Chirac": " French", "Helmut Kohl": " German", "Boris Yeltsin": " Russian",
         "Leo Tolstoy": " Russian", "Goethe": " German", "Fidel Castro": " Spanish", "Lionel Messi": " Spanish",
         "Nicolas Sarkozy": " French", "Albert Einstein": " German", "Vincent van Gogh": " Dutch",
         "Fyodor Dostoevsky": " Russian", "Napoleon": " French"},
    ),
    Relation(
        "currency", "The currency of {} is the",
        ("The official currency of {} is the", "In {}, the official currency is the", "In {}, the currency is the"),
        {"Japan": " yen", "India": " rupee", "South Africa": " rand", "Indonesia": " rupiah",
         "Canada": " Canadian Dollar", "Brazil": " real"},
        {"China": " yuan", "Mexico": " peso", "Russia": " ruble", "Germany": " Euro",
         "the United States": " US Dollar", "Australia": " Australian Dollar"},
    ),
    Relation(
        "landmark_city", "The {} is located in the city of",
        ("The {} can be found in the city of", "The {} is a famous landmark in the city of",
         "You can visit the {} in the city of", "The {} stands in the city of"),
        {"Eiffel Tower": " Paris", "Colosseum": " Rome", "Statue of Liberty": " New York", "Kremlin": " Moscow",
         "Brandenburg Gate": " Berlin", "Golden Gate Bridge": " San Francisco", "Sydney Opera House": " Sydney",
         "Acropolis": " Athens", "Taj Mahal": " Agra", "Leaning Tower of Pisa": " Pisa",
         "Sagrada Familia": " Barcelona", "Burj Khalifa": " Dubai"},
        {"Louvre": " Paris", "Pantheon": " Rome", "Parthenon": " Athens", "Empire State Building": " New York",
         "Tower of London": " London", "Prado Museum": " Madrid", "White House": " Washington",
         "Hollywood sign": " Los Angeles"},
    ),
    Relation(
        "product_maker", "The {} is made by",
        ("The {} is produced by", "The {} was developed by", "The {} is a product of"),
        {"iPhone": " Apple", "PlayStation": " Sony", "Xbox": " Microsoft"},
        {"iPad": " Apple", "MacBook": " Apple", "Galaxy phone": " Samsung", "Windows operating system": " Microsoft"},
    ),
)


def load_requests(path: Path = FACTS_PATH, limit: int | None = None) -> list[EditRequest]:
    """The file's facts as edit requests, in file order (the first ``limit`` of them)."""
    facts = json.loads(path.read_text())["facts"][:limit]
    return [EditRequest(f["prompt"], f["subject"], f["target_new"], f["target_true"], tuple(f["paraphrases"]),
                        tuple(NeighborhoodPrompt(n["prompt"], n["answer"]) for n in f["neighborhood"]))
            for f in facts]


def check_subjects(relations: tuple[Relation, ...]) -> None:
    """Refuse a candidate list where one subject is edited twice, or edited and used as a neighbour."""
    edited: dict[str, str] = {}
    for relation in relations:
        for subject in relation.edits:
            if subject in edited:
                raise ValueError(f"{subject!r} is edited in both {edited[subject]} and {relation.name}")
            edited[subject] = relation.name
    for relation in relations:
        if clash := sorted(set(relation.neighbors) & set(edited)):
            raise ValueError(f"{relation.name}: neighbourhood subjects {clash} are edited elsewhere")


def greedy_continuations(lm: LoadedModel, prompts: list[str]) -> dict[str, str]:
    """Each distinct prompt's greedy continuation of ``NEW_TOKENS`` tokens, in batches."""
    distinct = sorted(set(prompts))
    out: dict[str, str] = {}
    for start in range(0, len(distinct), BATCH):
        chunk = distinct[start:start + BATCH]
        rows = [GenerationRow(list(lm.tokenizer(p)["input_ids"]), SamplingParams(max_new_tokens=NEW_TOKENS))
                for p in chunk]
        out.update({p: r.text for p, r in zip(chunk, generate_batch(lm, rows), strict=True)})
    return out


def build(lm: LoadedModel, relations: tuple[Relation, ...] = RELATIONS) -> dict[str, Any]:
    """Check every candidate on ``lm`` and assemble the facts (deterministic: no clock, no global RNG)."""
    check_subjects(relations)
    prompts = [r.prompt.format(s) for r in relations for s in [*r.edits, *r.neighbors]]
    prompts += [t.format(s) for r in relations for s in r.edits for t in r.paraphrases]
    said = greedy_continuations(lm, prompts)
    facts: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    for relation in relations:
        def known(subject: str, answer: str, template: str, relation: Relation = relation) -> bool:
            return starts_with_answer(said[template.format(subject)], answer)

        neighbors = {s: a for s, a in relation.neighbors.items() if known(s, a, relation.prompt)}
        rejected += [{"id": f"{relation.name}/{s}", "role": "neighborhood", "prompt": relation.prompt.format(s),
                      "answer": a, "continuation": said[relation.prompt.format(s)],
                      "reason": "greedy continuation does not start with the answer"}
                     for s, a in relation.neighbors.items() if s not in neighbors]
        edits = {s: a for s, a in relation.edits.items() if known(s, a, relation.prompt)}
        rejected += [{"id": f"{relation.name}/{s}", "role": "edit", "prompt": relation.prompt.format(s), "answer": a,
                      "continuation": said[relation.prompt.format(s)],
                      "reason": "greedy continuation does not start with the answer"}
                     for s, a in relation.edits.items() if s not in edits]
        producers: dict[str, str] = {}  # answer -> a subject for which the model produces it
        for subject, answer in [*edits.items(), *neighbors.items()]:
            producers.setdefault(answer, subject)
        for subject, answer in edits.items():
            fact_id = f"{relation.name}/{subject}"
            rng = random.Random(fact_id)  # str seeds are hashed with sha512: stable across runs
            target_new = rng.choice(sorted(a for a in producers if a != answer))
            same = sorted(s for s, a in neighbors.items() if a == answer)
            other = sorted(s for s, a in neighbors.items() if a not in (answer, target_new))
            rng.shuffle(same)
            rng.shuffle(other)
            chosen = (same + other)[:NEIGHBORS]
            if len(chosen) < NEIGHBORS:
                rejected.append({"id": fact_id, "role": "edit", "reason": f"fewer than {NEIGHBORS} verified "
                                 f"neighbourhood prompts with an answer other than {target_new!r}"})
                continue
            ranked = sorted(relation.paraphrases, key=lambda t: not known(subject, answer, t))
            paraphrases = ranked[:PARAPHRASES]
            facts.append({
                "id": fact_id,
                "relation": relation.name,
                "prompt": relation.prompt,
                "subject": subject,
                "target_true": answer,
                "target_new": target_new,
                "paraphrases": [t.format(subject) for t in paraphrases],
                "neighborhood": [{"prompt": relation.prompt.format(s), "answer": neighbors[s]} for s in chosen],
                "checked": {
                    "prompt": said[relation.prompt.format(subject)],
                    "paraphrases": [said[t.format(subject)] for t in paraphrases],
                    "paraphrases_known": [known(subject, answer, t) for t in paraphrases],
                    "neighborhood": [said[relation.prompt.format(s)] for s in chosen],
                    "target_new_produced_for": relation.prompt.format(producers[target_new]),
                },
            })
    return {"facts": facts, "rejected": rejected}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="rebuild in memory and compare with the file")
    parser.add_argument("--out", type=Path, default=FACTS_PATH)
    args = parser.parse_args(argv)
    lm = ModelCache(Path.home() / ".cache/interp-service/models").load_model(
        "smollm2-135m", MODEL_SOURCE, device="cpu", dtype="float32")
    built = build(lm)
    n_candidates = sum(len(r.edits) for r in RELATIONS)
    print(f"{len(built['facts'])} of {n_candidates} candidate edits kept; {len(built['rejected'])} rejections",
          file=sys.stderr)
    for entry in built["rejected"]:
        print(f"  rejected {entry['id']} ({entry['role']}): {entry['reason']}: {entry.get('continuation')!r}",
              file=sys.stderr)
    if args.check:
        stored = json.loads(args.out.read_text())
        same = stored["facts"] == built["facts"] and stored["rejected"] == built["rejected"]
        print("the file matches the model" if same else "the file differs from a fresh build", file=sys.stderr)
        return 0 if same else 1
    document = {
        "description": "Facts SmolLM2-135M-Instruct knows (greedy generation), for ROME/MEMIT benchmarks; "
                       "built by benchmarks/data/build_editing_facts.py",
        "model": MODEL_SOURCE,
        "check": f"greedy generation of {NEW_TOKENS} new tokens (CPU, float32); a prompt is known when the "
                 "continuation starts with the answer at a word boundary",
        "built": time.strftime("%Y-%m-%d"),
        "torch": torch.__version__,
        **built,
    }
    args.out.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
