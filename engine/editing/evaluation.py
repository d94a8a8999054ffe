"""How well an edit took, measured the way the field does (CounterFact, Meng et al. 2022).

For each `EditRequest`, under the edited variant and under the model it was derived from (the
parent's components; the base model when there is no parent):

- **efficacy**: the edit prompt prefers ``target_new`` to ``target_true``. An answer's score is its
  mean token log-probability after the prompt (ROME's comparison for multi-token targets); when
  the request has no ``target_true``, the greedy continuation must start with ``target_new``;
- **paraphrase success**: the same on each paraphrase (the rate per request, averaged);
- **neighbourhood specificity**: each neighbourhood prompt still prefers its true answer to
  ``target_new`` (rate per request, averaged);
- the magnitudes beside the rates: P(wanted) - P(rival) with P = exp(mean token log-probability),
  so for a one-token answer the probability itself;
- **fluency**: ROME's weighted bi- and tri-gram entropy of text sampled from each edit prompt
  (prompt included, as ROME does), edited and base, with the same seeds (temperature 0.7);
- **drift**: ``KL(parent || variant)`` of the next-token distributions at every token of the canary
  prompts, mean and max (nats).

Scoring runs in padded batches through `engine.scoring.score_batch`; a (prompt, answer) pair asked
by several requests (shared neighbourhood prompts) is scored once.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections import Counter
from collections.abc import Iterator, Sequence

from engine.canaries import CANARY_PROMPTS, next_token_logprobs
from engine.components import Component
from engine.editing.request import EditRequest
from engine.editing.scorecard import Drift, EditEvaluation, Fluency, PromptCheck, RequestEvaluation, rate
from engine.generation import GenerationRow, SamplingParams, generate_batch
from engine.loading import LoadedModel
from engine.pass_plan import PassPlan
from engine.progress import Progress, ProgressFn, StopFn
from engine.runtime import InterventionRuntime
from engine.scoring import score_batch

#: nltk's ``word_tokenize`` (which ROME uses) approximated without its data files: words and single punctuation.
WORD = re.compile(r"\w+|[^\w\s]")


def starts_with_answer(text: str, answer: str) -> bool:
    """``text`` begins with ``answer`` at a word boundary (" Rome" is not " Romeo")."""
    if not text.startswith(answer):
        return False
    rest = text[len(answer):]
    return not rest or not (rest[0].isalnum() or rest[0] == "_")


def ngram_entropy(text: str, ns: Sequence[int] = (2, 3), weights: Sequence[float] = (2 / 3, 4 / 3)) -> float:
    """ROME's fluency measure: the mean of ``weight_n * H(n-gram frequencies)`` in bits over ``ns``.

    Repetitive text (a collapsed model saying "Rome Rome Rome") has few distinct n-grams and low
    entropy. A text too short for any n-gram of some order counts 0 for it (ROME gets NaN there).
    """
    words = WORD.findall(text)
    values = []
    for n, weight in zip(ns, weights, strict=True):
        counts = Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))
        total = sum(counts.values())
        entropy = -sum(c / total * math.log2(c / total) for c in counts.values()) if total else 0.0
        values.append(weight * entropy)
    return sum(values) / len(values)


@contextlib.contextmanager
def variant_pass(runtime: InterventionRuntime | None, components: Sequence[Component]) -> Iterator[None]:
    """Run the passes inside on ``components`` (nothing to do for the base model)."""
    if not components:
        yield
        return
    if runtime is None:
        raise ValueError("evaluating a variant needs the model's intervention runtime")
    with runtime.active(PassPlan.of_variant(components)):
        yield


def answer_logprobs(lm: LoadedModel, runtime: InterventionRuntime | None, components: Sequence[Component],
                    pairs: Sequence[tuple[str, str]], *, batch_size: int = 32) -> dict[tuple[str, str], float]:
    """Mean token log-probability of each answer right after its prompt, under a variant.

    The answer is tokenised on its own (it starts with a space) and appended to the prompt's ids,
    as ROME does, so the scored tokens are exactly the answer's.

    Returns:
        (prompt, answer) -> mean log-probability over the answer's tokens.
    """
    distinct = sorted(set(pairs))
    encoded = []
    for prompt, answer in distinct:
        prompt_ids = list(lm.tokenizer(prompt)["input_ids"])
        answer_ids = list(lm.tokenizer(answer, add_special_tokens=False)["input_ids"])
        if not prompt_ids or not answer_ids:
            raise ValueError(f"an empty prompt or answer cannot be scored: {prompt!r}, {answer!r}")
        encoded.append((prompt_ids, answer_ids))
    order = sorted(range(len(distinct)), key=lambda i: sum(map(len, encoded[i])))  # little padding per batch
    out: dict[tuple[str, str], float] = {}
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        with variant_pass(runtime, components):
            scored = score_batch(lm, [encoded[i][0] + encoded[i][1] for i in chunk])
        for i, logprobs in zip(chunk, scored, strict=True):
            n_prompt, n_answer = len(encoded[i][0]), len(encoded[i][1])
            # score_batch's entry j is the log-probability of token j + 1.
            picked = logprobs[n_prompt - 1:n_prompt - 1 + n_answer]
            out[distinct[i]] = sum(picked) / n_answer
    return out


def continuations(lm: LoadedModel, runtime: InterventionRuntime | None, variants: Sequence[Sequence[Component]],
                  prompts: Sequence[str], params: Sequence[SamplingParams], *, batch_size: int = 32) -> list[str]:
    """Continue each prompt on its own variant, in shared batches (rows on different variants mix)."""
    rows = [GenerationRow(list(lm.tokenizer(p)["input_ids"]), q, variant=v)
            for p, q, v in zip(prompts, params, variants, strict=True)]
    texts: list[str] = []
    for start in range(0, len(rows), batch_size):
        texts += [o.text for o in generate_batch(lm, rows[start:start + batch_size], runtime)]
    return texts


def evaluate_edits(lm: LoadedModel, runtime: InterventionRuntime | None, requests: Sequence[EditRequest],
                   components: Sequence[Component], *, parent: Sequence[Component] = (),
                   canaries: Sequence[str] = CANARY_PROMPTS, generation_tokens: int = 48, seed: int = 0,
                   batch_size: int = 32, on_progress: ProgressFn | None = None,
                   should_stop: StopFn | None = None) -> EditEvaluation:
    """Evaluate a variant's edits against the model it was derived from.

    Args:
        lm: the resident model.
        runtime: its intervention runtime (None only when both variants are the base model).
        requests: the edits made, with their paraphrases and neighbourhood prompts.
        components: every component of the edited variant, the parent's first.
        parent: the parent's components (the "before"); empty for the base model.
        canaries: prompts for the drift measure.
        generation_tokens: tokens sampled per edit prompt for the fluency measure.
        seed: seeds the fluency samples (row ``i`` uses ``seed + i`` in both variants).
        batch_size: rows per forward pass.
        on_progress: ``(fraction, message)`` after each of the four stages.
        should_stop: checked before each stage; True raises `CanceledError`.
    """
    if not requests:
        raise ValueError("nothing to evaluate: no edit requests")
    variants = {"base": list(parent), "edited": list(components)}
    progress = Progress(on_progress, should_stop)
    progress.check()

    pairs = []
    for r in requests:
        asked = [r.text, *(r.paraphrases if r.target_true is not None else ())]
        pairs += [(p, a) for p in asked for a in (r.target_new, r.target_true) if a is not None]
        pairs += [(p, r.target_new) for p in r.paraphrases]
        pairs += [(n.prompt, a) for n in r.neighborhood for a in (n.answer, r.target_new)]
    scores = {k: answer_logprobs(lm, runtime, v, pairs, batch_size=batch_size) for k, v in variants.items()}
    progress.report(1 / 4, "evaluation: answers scored")
    progress.check()

    # Greedy continuations: the edit prompt always (the report shows them); paraphrases when there
    # is no target_true to compare against. Long enough for the longest target_new and a token more.
    greedy_prompts = sorted({r.text for r in requests}
                            | {p for r in requests if r.target_true is None for p in r.paraphrases})
    longest = max(len(lm.tokenizer(r.target_new, add_special_tokens=False)["input_ids"]) for r in requests)
    greedy = SamplingParams(max_new_tokens=longest + 1)
    said = continuations(lm, runtime, [v for v in variants.values() for _ in greedy_prompts],
                         greedy_prompts * 2, [greedy] * 2 * len(greedy_prompts), batch_size=batch_size)
    greedy_said = {"base": dict(zip(greedy_prompts, said[:len(greedy_prompts)], strict=True)),
                   "edited": dict(zip(greedy_prompts, said[len(greedy_prompts):], strict=True))}
    progress.report(2 / 4, "evaluation: greedy continuations")
    progress.check()

    def check(prompt: str, wanted: str, rival: str | None) -> PromptCheck:
        p = {k: math.exp(scores[k][(prompt, wanted)]) for k in variants}
        if rival is None:
            ok = {k: starts_with_answer(greedy_said[k][prompt], wanted) for k in variants}
            return PromptCheck(prompt, wanted, None, p["base"], p["edited"], None, None, ok["base"], ok["edited"])
        q = {k: math.exp(scores[k][(prompt, rival)]) for k in variants}
        ok = {k: scores[k][(prompt, wanted)] > scores[k][(prompt, rival)] for k in variants}
        return PromptCheck(prompt, wanted, rival, p["base"], p["edited"], q["base"], q["edited"], ok["base"],
                           ok["edited"])

    evaluated = tuple(RequestEvaluation(
        subject=r.subject, target_new=r.target_new, target_true=r.target_true,
        efficacy=check(r.text, r.target_new, r.target_true),
        paraphrases=tuple(check(p, r.target_new, r.target_true) for p in r.paraphrases),
        neighborhood=tuple(check(n.prompt, n.answer, r.target_new) for n in r.neighborhood),
        continuation_base=greedy_said["base"][r.text], continuation_edited=greedy_said["edited"][r.text],
    ) for r in requests)

    prompts = [r.text for r in requests]
    # Plain sampling at temperature 0.7 stands in for ROME's top-k 5: nucleus sampling sorts the
    # vocabulary at every step and doubled the cost of this stage on CPU.
    sampling = [SamplingParams(max_new_tokens=generation_tokens, temperature=0.7, seed=seed + i)
                for i in range(len(prompts))]
    sampled = continuations(lm, runtime, [v for v in variants.values() for _ in prompts], prompts * 2, sampling * 2,
                            batch_size=batch_size)
    texts = {"base": [p + t for p, t in zip(prompts, sampled[:len(prompts)], strict=True)],
             "edited": [p + t for p, t in zip(prompts, sampled[len(prompts):], strict=True)]}
    entropy = {k: sum(map(ngram_entropy, v)) / len(v) for k, v in texts.items()}
    fluency = Fluency(entropy["edited"], entropy["base"], tuple(texts["edited"][:3]), tuple(texts["base"][:3]))
    progress.report(3 / 4, "evaluation: fluency")
    progress.check()

    before = next_token_logprobs(lm, canaries, runtime=runtime, variant=variants["base"])
    after = next_token_logprobs(lm, canaries, runtime=runtime, variant=variants["edited"])
    kl = (before.exp() * (before - after)).sum(-1).clamp(min=0.0)  # rounding can give -1e-9 for equal rows
    drift = Drift(float(kl.mean()), float(kl.max()), int(kl.numel()))
    progress.report(4 / 4, "evaluation: canary drift")

    return EditEvaluation(
        n_requests=len(requests),
        efficacy=rate([(e.efficacy,) for e in evaluated]),
        paraphrase=rate([e.paraphrases for e in evaluated]),
        neighborhood=rate([e.neighborhood for e in evaluated]),
        fluency=fluency,
        drift=drift,
        requests=evaluated,
    )
