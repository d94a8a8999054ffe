"""Turning a request's `variant` into a stored variant, or a problem naming the field.

The API and the workers share the variant store on disk (``settings.variant_store``), so a job's
variant is checked here at submission: an unknown one is a 404 now, not a failed job later.
"""

from __future__ import annotations

from engine.loading import LoadedModel
from engine.variant_store import Variant, VariantNotFoundError
from service.problems import ProblemError
from service.state import AppState


def unknown_variant(exc: VariantNotFoundError, field: str) -> ProblemError:
    return ProblemError(404, "Unknown variant", str(exc), field=field)


def check_variant(state: AppState, model: str, ref: str | None, *, field: str = "variant") -> str | None:
    """The exact version ``ref`` names now (``name@N``), or None without a variant; 404 when unknown."""
    if ref is None:
        return None
    try:
        name, version = state.variants.resolve(model, ref)
    except VariantNotFoundError as exc:
        raise unknown_variant(exc, field) from exc
    except ValueError as exc:
        raise ProblemError(422, "Invalid request", str(exc), field=field) from exc
    return f"{name}@{version}"


def load_variant(state: AppState, lm: LoadedModel, ref: str | None, *, field: str = "variant") -> Variant | None:
    """Load ``ref`` for a resident model: 404 unknown, 409 corrupt or built for another shape."""
    if ref is None:
        return None
    try:
        variant = state.variants.load(lm.name, ref)
    except VariantNotFoundError as exc:
        raise unknown_variant(exc, field) from exc
    except ValueError as exc:  # a damaged file is reported, never served
        raise ProblemError(409, "Corrupt variant", str(exc), field=field) from exc
    if variant.manifest.get("hidden_size") != lm.hidden_size:
        raise ProblemError(409, "Variant does not fit the model",
                           f"variant {variant.ref} was made for hidden size {variant.manifest.get('hidden_size')}; "
                           f"{lm.name} has {lm.hidden_size}", field=field)
    try:
        state.registry.runtime(lm.name).check_sites(c.site for c in variant.components)
    except ValueError as exc:
        raise ProblemError(409, "Variant cannot be served", str(exc), field=field) from exc
    return variant.on(lm.device)
