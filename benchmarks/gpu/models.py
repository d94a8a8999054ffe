"""The run's sizes, and models built from real configs with random weights, straight on the device.

An 8B model in bfloat16 is 16 GB: it is built under ``with torch.device(device)`` with
``dtype=bfloat16``, so its weights are allocated and initialised on the GPU, never as float32 on
the CPU. A tokenizer is not needed: prompts are random token ids, and generation only asks the
tokenizer for its pad and EOS ids and to decode (`IdTokenizer`). EOS is unset in the model's
generation config too, so both ours and ``model.generate`` produce exactly the tokens asked for.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from transformers import AutoConfig, AutoModelForCausalLM, PretrainedConfig, PreTrainedTokenizerBase

from engine.adapters import adapter_for, linear_dims
from engine.components import LowRankDelta
from engine.editing.hparams import default_hparams
from engine.loading import LoadedModel
from engine.runtime import editable_modules

CONFIGS = Path(__file__).resolve().parent.parent / "data" / "configs"
SMALL, MEDIUM, LARGE = "smollm2-135m", "llama-3.2-1b", "llama-3.1-8b"
#: What ``--smoke`` keeps of each config: the architecture, at a size that runs in milliseconds on a CPU.
TINY = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 4, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 512}


@dataclass(frozen=True)
class Sizes:
    """How much work each section does (the GPU run's and the smoke run's).

    Attributes:
        batches: generation batch sizes.
        prompt: generation prompt tokens (every row the same length: no padding on either side).
        new_tokens: tokens generated per row (EOS ignored).
        repeats: timed repeats after one warm-up, for every timed measure.
        variants: edited variants served in one batch (ROME-size rank-1 deltas).
        ig_prompt: IG prompt tokens; ig_steps: Gauss-Legendre steps (ours and Captum's).
        adaptive_prompts: prompts for the adaptive rule's completeness on the small config.
        trace_prompt: causal-trace prompt tokens; trace_samples: noise samples per cell.
        naive_cells: cells the one-forward-per-cell loop is timed on (spread over the grid).
        memory_variants: variants made resident for the memory measure.
        large_tokens: tokens per row for the large config's generation row.
    """

    batches: tuple[int, ...] = (1, 16, 64)
    prompt: int = 32
    new_tokens: int = 64
    repeats: int = 5
    variants: int = 16
    ig_prompt: int = 24
    ig_steps: int = 50
    adaptive_prompts: int = 3
    trace_prompt: int = 12
    trace_samples: int = 10
    naive_cells: int = 48
    memory_variants: int = 100
    large_tokens: int = 32


GPU = Sizes()
SMOKE = Sizes(batches=(1, 4, 8), prompt=6, new_tokens=4, repeats=1, variants=4, ig_prompt=5, ig_steps=4,
              adaptive_prompts=1, trace_prompt=5, trace_samples=2, naive_cells=4, memory_variants=10,
              large_tokens=3)


class IdTokenizer:
    """What generation asks of a tokenizer, for prompts given as ids: pad 0, no EOS, ids as text."""

    pad_token_id = 0
    eos_token_id = None

    def __init__(self, vocab: int) -> None:
        self.vocab = vocab

    def __len__(self) -> int:
        return self.vocab

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        return " ".join(str(i) for i in ids)


def load_config(name: str, *, smoke: bool) -> PretrainedConfig:
    """The published config of ``name`` (``benchmarks/data/configs/<name>.json``); tiny under ``smoke``."""
    values: dict[str, Any] = json.loads((CONFIGS / f"{name}.json").read_text())
    values = {key: value for key, value in values.items() if not key.startswith("_")}
    if smoke:
        values |= TINY
    return AutoConfig.for_model(values.pop("model_type"), **values)


def build(name: str, *, device: torch.device, dtype: torch.dtype, smoke: bool, seed: int = 0) -> LoadedModel:
    """A frozen random-init model of config ``name``, allocated and initialised on ``device`` in ``dtype``."""
    config = load_config(name, smoke=smoke)
    torch.manual_seed(seed)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.eval()
    model.requires_grad_(False)
    generation = model.generation_config
    generation.eos_token_id, generation.bos_token_id, generation.pad_token_id = None, None, 0
    tokenizer = cast(PreTrainedTokenizerBase, IdTokenizer(int(config.vocab_size)))
    return LoadedModel(name=name, source=f"config:{name}", model=model, tokenizer=tokenizer,
                       adapter=adapter_for(model))


def release(*objects: object) -> None:
    """Drop references the caller passes (and no longer holds) and return their GPU memory."""
    del objects
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def prompts(lm: LoadedModel, count: int, length: int, seed: int) -> list[list[int]]:
    """``count`` random prompts of ``length`` ids (never the pad id 0)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(1, int(lm.model.config.vocab_size), (count, length), generator=g).tolist()


def rome_deltas(lm: LoadedModel, count: int, seed: int) -> list[LowRankDelta]:
    """``count`` rank-1 deltas (ROME's size) on the MLP output projection ROME edits by default, on the device."""
    layer = default_hparams(lm.architecture, "rome", lm.n_layers).layers[0]
    name = list(editable_modules(lm))[layer]
    n_in, n_out = linear_dims(editable_modules(lm)[name])
    g = torch.Generator().manual_seed(seed)
    return [LowRankDelta(name, torch.nn.functional.normalize(torch.randn(1, n_in, generator=g), dim=-1),
                         0.05 * torch.randn(n_out, 1, generator=g)).to(lm.device) for _ in range(count)]


def unit_vectors(lm: LoadedModel, count: int, seed: int) -> list[torch.Tensor]:
    """``count`` random unit steering vectors of the model's hidden size (float32, CPU: as a request has them)."""
    g = torch.Generator().manual_seed(seed)
    return list(torch.nn.functional.normalize(torch.randn(count, lm.hidden_size, generator=g), dim=-1))
