"""Device memory: the resident model, + resident variants, + an IG job's float32 copy of the weights.

On a GPU the figures are the caching allocator's (``torch.cuda.memory_allocated``, and
``max_memory_allocated`` over one real IG job); on the CPU (``--smoke``) they are the bytes of the
tensors themselves. Variants are ROME-size: one rank-1 delta on the MLP output projection each,
float32, on the device, as `ops.references.load_variant` keeps them.
"""

from __future__ import annotations

import torch

from benchmarks.gpu.models import Sizes, prompts, rome_deltas
from benchmarks.gpu.report import Report, Row
from engine.attribution.compute_weights import ComputeWeights
from engine.attribution.integrated_gradients import integrated_gradients
from engine.loading import LoadedModel

SECTION = "memory"
#: At most this much more memory with ``memory_variants`` variants resident than the model alone.
TARGET = 1.01
GIB = 2**30


def allocated(device: torch.device) -> int | None:
    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    return int(torch.cuda.memory_allocated(device))


def run(report: Report, lm: LoadedModel, sizes: Sizes) -> None:
    """Measure what the model, ``memory_variants`` variants and an IG job's weight copy take."""
    device = lm.device
    start = allocated(device)
    tensors = lm.parameter_bytes + sum(b.numel() * b.element_size() for b in lm.model.buffers())
    model = start if start is not None else tensors
    variants = rome_deltas(lm, sizes.memory_variants, seed=41)
    with_variants = allocated(device)
    variant_bytes = sum(d.a.numel() * d.a.element_size() + d.b.numel() * d.b.element_size() for d in variants)
    resident = with_variants if with_variants is not None else model + variant_bytes
    embedding = lm.adapter.embedding(lm.model)
    base, head = lm.model.base_model, lm.adapter.unembedding(lm.model)
    weights = ComputeWeights(torch.float32).add(base, skip=embedding.parameters()).add(head)
    with_copy = allocated(device)
    copy = with_copy - resident if with_copy is not None else weights.nbytes
    del weights
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    ids = prompts(lm, 1, 16, seed=43)[0]
    integrated_gradients(lm, ids, [ids[-1]], attributable=[True] * len(ids), baseline=0, rule="gauss_legendre",
                         n_steps=8)
    peak = int(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else None
    how = "allocator" if start is not None else "tensor bytes"
    report.record(f"{SECTION}.{lm.name}", {"model": model, "with_variants": resident, "variant_bytes": variant_bytes,
                                            "float32_copy": copy, "ig_peak": peak, "measured_by": how})
    ratio = resident / model
    report.add(Row(SECTION, f"{lm.name} ({lm.dtype}) resident + {len(variants)} ROME-size variants (rank-1 deltas, "
                            f"float32) vs the model alone, GiB ({how})", f"{resident / GIB:.3f}", f"{model / GIB:.3f}",
                   f"{ratio:.4f}x", f"<= {TARGET:g}x", report.verdict(ratio <= TARGET)))
    report.add(Row(SECTION, f"{lm.name}: + an IG job's float32 copy of the weights (input embedding skipped), GiB",
                   f"{(resident + copy) / GIB:.2f}", ratio=f"{(resident + copy) / model:.2f}x"))
    if peak is not None:
        report.add(Row(SECTION, f"{lm.name}: peak during one IG job (GL 8, 16 tokens, float32 compute), GiB",
                       f"{peak / GIB:.2f}", ratio=f"{peak / model:.2f}x"))
    del variants
