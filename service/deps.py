"""`Annotated` dependencies: routes declare what they need, never reach for globals."""

from __future__ import annotations

import functools
from typing import Annotated

from fastapi import Depends, Header, Path, Request, Security
from fastapi.security import APIKeyHeader

from config.logs import update_context
from config.settings import Settings
from ops.context import Facts, Resident
from ops.errors import FieldError, NotFoundError, ProblemError, UnavailableError
from schemas.names import JOB_ID_PATTERN, NAME, NAME_RULE
from service.auth import API_KEY_HEADER, API_KEY_SCHEME, Caller
from service.rate_limit import retry_after
from service.state import AppState


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.interp
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def get_settings(state: StateDep) -> Settings:
    return state.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


api_key_scheme = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, scheme_name=API_KEY_SCHEME,
                              description="The deployment's API key, when it sets keys (INTERP_API_KEYS). "
                              "The key's tenant sees only its own variants, vectors and jobs.")


def unauthorized() -> ProblemError:
    """The 401 of a missing or unknown key (answered here and, before a body is read, by `KeyGuard`)."""
    return ProblemError(401, "Unauthorized", f"a valid {API_KEY_HEADER} header is required", field=API_KEY_HEADER,
                        headers={"WWW-Authenticate": f'ApiKey realm="interp", header="{API_KEY_HEADER}"'})


async def authenticate(
    request: Request, state: StateDep, api_key: Annotated[str | None, Security(api_key_scheme)] = None
) -> str:
    """The caller's tenant; 401 when keys are configured and the key is missing or unknown.

    The key is compared in constant time (`KeyRing`) and never logged: only the tenant is put in
    the log context and in ``request.state.tenant``.
    """
    tenant = state.keyring.tenant_for(api_key)
    if tenant is None:
        raise unauthorized()
    request.state.tenant = tenant
    update_context(tenant=tenant)
    return tenant


TenantDep = Annotated[str, Depends(authenticate)]


async def get_caller(request: Request, state: StateDep, tenant: TenantDep) -> Caller:
    """The authenticated caller, after its tenant's rate limit (429 with Retry-After when exceeded)."""
    limiter = state.limiter
    wait = await limiter.take(tenant)
    if wait > 0:
        raise ProblemError(429, "Too many requests",
                           f"tenant {tenant!r} exceeded {limiter.rate:g} requests per second (burst "
                           f"{limiter.burst}); retry after the Retry-After seconds",
                           headers={"Retry-After": retry_after(wait)})
    return Caller(tenant=tenant, request_id=getattr(request.state, "request_id", None))


CallerDep = Annotated[Caller, Depends(get_caller)]


def resolve_model(state: AppState, model: str | None) -> str:
    """The model a request names (or the default), or a 404 problem naming the field."""
    name = model or state.default_model()
    if NAME.fullmatch(name) is None:
        raise FieldError(f"invalid model name {name[:80]!r}: {NAME_RULE}", "model")
    if name not in state.settings.models:
        raise NotFoundError("Unknown model", f"unknown model {name!r}; this deployment serves "
                       f"{', '.join(state.settings.models)}", "model")
    return name


def reported_layers(state: AppState, model: str) -> int | None:
    """The model's block count as a live worker reported it (None while none has)."""
    for worker in state.directory.live(model):
        n_layers = worker.get("models", {}).get(model, {}).get("n_layers")
        if isinstance(n_layers, int):
            return n_layers
    return None


def facts_for(state: AppState, caller: Caller, model: str | None) -> Facts:
    """What the API knows about the request's model, to check a request with: the model itself when this
    process holds it, else its depth as a worker reported it; and the caller's stores."""
    name = resolve_model(state, model)
    stores = state.stores(caller.tenant)
    if name in state.registry:
        return Facts(model=name, settings=state.settings, stores=stores, lm=state.registry.get(name))
    return Facts(model=name, settings=state.settings, stores=stores,
                 reported_layers=functools.cache(lambda: reported_layers(state, name)))


def resident_for(state: AppState, caller: Caller, model: str | None) -> Resident:
    """The request's model as resident in this process, for a synchronous operation; 503 when it is not."""
    name = resolve_model(state, model)
    if name not in state.registry or state.batcher is None:
        raise UnavailableError("Model not resident", f"model {name!r} is not loaded in the API process "
                          "(INTERP_API_LOAD_MODELS)", retry_after=state.settings.retry_after_seconds)
    return Resident(lm=state.registry.get(name), runtime=state.registry.runtime(name), settings=state.settings,
                    stores=state.stores(caller.tenant))


#: The optional ``Idempotency-Key`` header of every job submission.
IdempotencyKey = Annotated[str | None, Header(max_length=200, description="Retries with the same key return the "
                                              "same job (a different body with the same key is a 409).")]

#: The ``job_id`` path parameter of every job route.
JobId = Annotated[str, Path(pattern=JOB_ID_PATTERN, description="The job id from the 202 response.")]
