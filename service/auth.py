"""API keys and tenants: who is calling (`Caller`), decided from ``X-API-Key`` by a `KeyRing`.

A key belongs to a tenant. A tenant sees the base models, and only its own variants, steering
vectors and jobs; without configured keys every request belongs to the one ``default`` tenant,
whose stores are laid out as before tenants existed.

Keys are held only as sha256 digests and compared with `hmac.compare_digest` against every
configured key, whatever matches, so neither which key matched nor how much of a key was right
shows in the timing (digests also make every comparison the same length). Keys are never logged:
only the tenant's name goes into the log context.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from config.settings import DEFAULT_TENANT

API_KEY_HEADER = "X-API-Key"
API_KEY_SCHEME = "ApiKey"


@dataclass(frozen=True)
class Caller:
    """The authenticated side of a request.

    Attributes:
        tenant: whose variants, vectors and jobs the request may see and create.
        request_id: the request's id (``X-Request-ID``), stored in the jobs it submits.
    """

    tenant: str
    request_id: str | None = None


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()


class KeyRing:
    """The configured keys, as digests, each with its tenant.

    Args:
        keys: key -> tenant (``Settings.api_keys``).
    """

    def __init__(self, keys: Mapping[str, str]) -> None:
        self._entries = [(_digest(key), tenant) for key, tenant in keys.items()]

    @property
    def enabled(self) -> bool:
        """Whether requests must carry a key."""
        return bool(self._entries)

    def tenant_for(self, given: str | None) -> str | None:
        """The tenant of ``given``, or None for a missing or unknown key.

        Without configured keys every caller is the default tenant.
        """
        if not self._entries:
            return DEFAULT_TENANT
        digest = _digest(given or "")
        found: str | None = None
        for stored, tenant in self._entries:  # no early exit: every key is compared every time
            matched = hmac.compare_digest(digest, stored)
            found = tenant if matched else found
        return found if given else None


def optional_key_security(spec: dict[str, Any]) -> dict[str, Any]:
    """Mark the key optional in an OpenAPI spec (in place): ``security: [{ApiKey: []}, {}]``.

    Whether a key is needed depends on the deployment (INTERP_API_KEYS), so a generated client
    must be able to call with or without one.
    """
    for item in spec.get("paths", {}).values():
        for operation in item.values():
            if isinstance(operation, dict) and operation.get("security") == [{API_KEY_SCHEME: []}]:
                operation["security"] = [{API_KEY_SCHEME: []}, {}]
    return spec
