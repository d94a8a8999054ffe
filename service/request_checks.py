"""Request checks the routes share: each refuses, with a 422 naming the field, what a job would only fail on.

A job that fails on a limit fails minutes later, in a worker, with no field to point at; the same check
at submission answers at once and names the field the client wrote. The details and fields here are
part of the API (clients match on them), so each check words its problem exactly one way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from service.problems import ProblemError
from service.state import AppState

#: Texts to tokenize, by the field they came from (``texts.0``): (what the detail calls it, the text).
LabelledTexts = Mapping[str, tuple[str, str]]


def invalid(detail: str, field: str) -> ProblemError:
    """The 422 every request check raises.

    Args:
        detail: what is wrong, with the numbers the client needs to fix it.
        field: the offending field, as the client wrote it (``texts.3``).

    Returns:
        The problem to raise.
    """
    return ProblemError(422, "Invalid request", detail, field=field)


def check_count(count: int, limit: int, field: str, *, noun: str | None = None, rule: str | None = None) -> None:
    """Refuse more items than a setting allows: ``"{count} {noun}; {rule}"``.

    Args:
        count: how many items the request has.
        limit: the most allowed.
        field: the list's field.
        noun: what the detail calls the items; the field's name by default.
        rule: the limit as the detail states it; ``"the limit is {limit}"`` by default.

    Raises:
        ProblemError: 422 naming ``field`` when ``count`` is over ``limit``.
    """
    if count > limit:
        raise invalid(f"{count} {noun or field}; {rule or f'the limit is {limit}'}", field)


def check_at_most(value: int, limit: int, field: str) -> None:
    """Refuse a number over a setting: ``"{field} is {value}; the limit is {limit}"``.

    Raises:
        ProblemError: 422 naming ``field`` when ``value`` is over ``limit``.
    """
    if value > limit:
        raise invalid(f"{field} is {value}; the limit is {limit}", field)


def check_batch_size(batch_size: int | None, limit: int) -> None:
    """Refuse a ``batch_size`` over ``settings.max_batch_size`` (None: the worker chooses, always allowed).

    Raises:
        ProblemError: 422 naming ``batch_size``.
    """
    if batch_size is not None and batch_size > limit:
        raise invalid(f"batch_size {batch_size} exceeds the limit {limit}", "batch_size")


def check_token_counts(state: AppState, model: str, texts: LabelledTexts, *, minimum: int,
                       add_special_tokens: bool) -> None:
    """Refuse the first text, in order, with fewer than ``minimum`` or more than ``max_prompt_tokens`` tokens.

    Only a model the API holds has a tokenizer here; for any other the worker checks the texts itself.

    Args:
        state: the app's state (registry and settings).
        model: the resolved model name.
        texts: the texts by field, each with what the detail calls it.
        minimum: the fewest tokens allowed; 0 leaves out the lower bound (and words the detail as a limit).
        add_special_tokens: tokenize as the job will: with the model's special tokens, or the bare text.

    Raises:
        ProblemError: 422 naming the text's field.
    """
    if model not in state.registry:
        return
    tokenizer, limit = state.registry.get(model).tokenizer, state.settings.max_prompt_tokens
    allowed = f"the limit is {limit}" if minimum <= 0 else f"{minimum} to {limit} are allowed"
    for field, (label, text) in texts.items():
        n_tokens = len(tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"])
        if not minimum <= n_tokens <= limit:
            raise invalid(f"{label} has {n_tokens} tokens; {allowed}", field)


def known_layers(state: AppState, model: str) -> int | None:
    """The model's block count, from the API's copy or a live worker's report.

    Returns:
        The number of blocks, or None while neither the API nor a live worker has reported it.
    """
    if model in state.registry:
        return state.registry.get(model).n_layers
    for worker in state.directory.live(model):
        n_layers = worker.get("models", {}).get(model, {}).get("n_layers")
        if isinstance(n_layers, int):
            return n_layers
    return None


def check_layers_in_range(state: AppState, model: str, layers: Sequence[int], field: str) -> None:
    """Refuse layers past the model's last block (unchecked while its depth is unknown: the worker checks).

    Raises:
        ProblemError: 422 naming ``field`` and listing every layer out of range.
    """
    n_layers = known_layers(state, model)
    if n_layers is not None and (bad := [layer for layer in layers if layer >= n_layers]):
        raise invalid(f"layers {bad} are out of range: {model} has blocks 0..{n_layers - 1}", field)
