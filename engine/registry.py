"""`ModelRegistry`: the models resident in one process, built once at start-up and injected."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path

from engine.loading import LoadedModel, load_model
from engine.runtime import InterventionRuntime

log = logging.getLogger(__name__)


class UnknownModelError(KeyError):
    """A request named a model that is not configured in this deployment."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(name)
        self.name = name
        self.known = known

    def __str__(self) -> str:
        return f"unknown model {self.name!r}; this deployment serves {', '.join(self.known) or 'none'}"


class ModelRegistry:
    """Named models resident in this process, each with its intervention runtime installed.

    Each model also carries a lock for code that runs passes outside the runtime's batcher.
    `close` removes every runtime's hooks.
    """

    def __init__(self, models: Mapping[str, LoadedModel] | None = None) -> None:
        self._models: dict[str, LoadedModel] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._runtimes: dict[str, InterventionRuntime] = {}
        self._hooks = ExitStack()
        for model in (models or {}).values():
            self.add(model)

    @classmethod
    def load(cls, sources: Mapping[str, str], *, device: str, dtype: str,
             locate: Callable[[str], str | Path]) -> ModelRegistry:
        """Load every configured model and return the registry.

        Args:
            sources: model name -> source (a directory, a cached hub id, ``builtin:...``).
            device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
            dtype: ``auto``, ``float32``, ``float16`` or ``bfloat16``.
            locate: where a source's weights are read from (`store.model_cache.ModelCache.locate`
                converts a built-in into a directory once and returns it).
        """
        models: dict[str, LoadedModel] = {}
        for name, source in sources.items():
            started = time.perf_counter()
            models[name] = load_model(name, source, device=device, dtype=dtype, path=locate(source))
            log.info("model %s resident (%.1f s)", name, time.perf_counter() - started)
        return cls(models)

    def add(self, model: LoadedModel) -> None:
        """Make ``model`` resident and install its runtime's hooks (once, for its lifetime here)."""
        self._models[model.name] = model
        self._locks[model.name] = threading.Lock()
        self._runtimes[model.name] = self._hooks.enter_context(InterventionRuntime(model).installed())

    def runtime(self, name: str) -> InterventionRuntime:
        self.get(name)
        return self._runtimes[name]

    def close(self) -> None:
        """Remove every hook this registry installed."""
        self._hooks.close()

    def get(self, name: str) -> LoadedModel:
        """Return a resident model, or raise `UnknownModelError`."""
        try:
            return self._models[name]
        except KeyError:
            raise UnknownModelError(name, sorted(self._models)) from None

    def lock(self, name: str) -> threading.Lock:
        self.get(name)
        return self._locks[name]

    def names(self) -> list[str]:
        return sorted(self._models)

    def __contains__(self, name: object) -> bool:
        return name in self._models

    def __iter__(self) -> Iterator[LoadedModel]:
        return iter(self._models.values())

    def __len__(self) -> int:
        return len(self._models)
