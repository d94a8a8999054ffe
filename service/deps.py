"""`Annotated` dependencies: routes declare what they need, never reach for globals."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, Request

from schemas.settings import Settings
from service.problems import ProblemError
from service.state import AppState


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.interp
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def get_settings(state: StateDep) -> Settings:
    return state.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def require_api_key(
    state: StateDep,
    x_api_key: Annotated[str | None, Header(description="API key, when the deployment sets keys.")] = None,
) -> None:
    """When keys are configured, require one of them (compared in constant time)."""
    keys = state.settings.api_keys
    if not keys:
        return
    given = (x_api_key or "").encode()
    if not any(hmac.compare_digest(given, key.encode()) for key in keys):
        raise ProblemError(401, "Unauthorized", "a valid X-API-Key header is required",
                           field="X-API-Key")


def resolve_model(state: AppState, model: str | None) -> str:
    """The model a request names (or the default), or a 404 problem naming the field."""
    name = model or state.default_model()
    if name not in state.settings.models:
        raise ProblemError(404, "Unknown model",
                           f"unknown model {name!r}; this deployment serves "
                           f"{', '.join(state.settings.models)}", field="model")
    return name
