"""Turning a request's `variant` into a stored variant, or a problem naming the field.

The API and the workers share the variant store on disk (``settings.variant_store``), so a job's
variant is checked here at submission: an unknown one is a 404 now, not a failed job later.
Variants belong to a tenant: a caller sees only its own, and another tenant's variant is a 404
exactly like one that does not exist. A damaged stored variant is a 409, never served.
"""

from __future__ import annotations

from engine.loading import LoadedModel
from service.auth import Caller
from service.problems import ProblemError
from service.state import AppState
from store.integrity import CorruptEntryError
from store.variants import Variant
from store.versioned import EntryNotFoundError


def unknown_variant(exc: EntryNotFoundError, field: str) -> ProblemError:
    return ProblemError(404, "Unknown variant", str(exc), field=field)


def corrupt_variant(exc: CorruptEntryError, field: str) -> ProblemError:
    return ProblemError(409, "Corrupt variant", f"{exc}; it is not served: delete it and make it again",
                        field=field)


def check_variant(state: AppState, caller: Caller, model: str, ref: str | None, *,
                  field: str = "variant") -> str | None:
    """The exact version ``ref`` names now (``name@N``) among the caller's variants, or None without
    a variant; 404 when unknown (or another tenant's), 409 when its files are damaged (both are
    checked against their hashes here, so a job is never queued on a variant it could not load)."""
    if ref is None:
        return None
    try:
        manifest = state.variant_store(caller.tenant).verify(model, ref)
    except EntryNotFoundError as exc:
        raise unknown_variant(exc, field) from exc
    except CorruptEntryError as exc:
        raise corrupt_variant(exc, field) from exc
    except ValueError as exc:
        raise ProblemError(422, "Invalid request", str(exc), field=field) from exc
    return f"{manifest['name']}@{manifest['version']}"


def load_variant(state: AppState, caller: Caller, lm: LoadedModel, ref: str | None, *,
                 field: str = "variant") -> Variant | None:
    """Load the caller's ``ref`` for a resident model: 404 unknown, 409 corrupt or built for another shape."""
    if ref is None:
        return None
    try:
        variant = state.variant_store(caller.tenant).load(lm.name, ref)
    except EntryNotFoundError as exc:
        raise unknown_variant(exc, field) from exc
    except CorruptEntryError as exc:  # a damaged file is reported, never served
        raise corrupt_variant(exc, field) from exc
    except ValueError as exc:  # e.g. a component kind this build does not know
        raise ProblemError(409, "Variant cannot be served", str(exc), field=field) from exc
    if variant.manifest.get("hidden_size") != lm.hidden_size:
        raise ProblemError(409, "Variant does not fit the model",
                           f"variant {variant.ref} was made for hidden size {variant.manifest.get('hidden_size')}; "
                           f"{lm.name} has {lm.hidden_size}", field=field)
    try:
        state.registry.runtime(lm.name).check_components(variant.components)
    except ValueError as exc:
        raise ProblemError(409, "Variant cannot be served", str(exc), field=field) from exc
    return variant.on(lm.device)
