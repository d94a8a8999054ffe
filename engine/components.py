"""The pieces a model variant is made of: frozen tensors applied at a site of the forward pass.

A variant is the base model plus an ordered list of components. Each component names its *site*
and maps the activation there to a new one, row by row, never touching the model's weights:

- ``block.<l>`` (the residual stream after block ``l``): `AffineEraser`, a LEACE or orthogonal
  concept eraser ``x - L R (x - b)``.
- ``module.<qualified name>`` (the output of a linear module): `LowRankDelta`, an edit
  ``W x + B (A x)`` such as ROME (rank 1) or MEMIT (rank n), served by the runtime's hook on each
  block's MLP output projection (`engine.runtime`, the ``mlp_value`` site of `engine.sites`).

Components are stored as named tensors (safetensors) plus JSON facts (`describe`), and rebuilt
with `component_from_parts`; nothing else is ever deserialised.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch

BLOCK_SITE = "block."
MODULE_SITE = "module."


@runtime_checkable
class Component(Protocol):
    """What the runtime and the variant store need from a component kind."""

    kind: ClassVar[str]

    @property
    def site(self) -> str:
        """``block.<layer>`` or ``module.<qualified module name>``."""
        ...

    def apply(self, output: torch.Tensor, module_input: torch.Tensor | None) -> torch.Tensor:
        """Map the site's output ``[rows, seq, dim]`` (given its input, for module sites) to a new one."""
        ...

    def tensors(self) -> dict[str, torch.Tensor]:
        """The tensors to store, by name (float32, CPU)."""
        ...

    def describe(self) -> dict[str, Any]:
        """JSON facts to store beside the tensors (``kind`` and ``site`` included)."""
        ...

    def to(self, device: torch.device | str) -> Component:
        """The same component with its tensors on ``device`` (float32)."""
        ...


def block_site(layer: int) -> str:
    return f"{BLOCK_SITE}{layer}"


@dataclass(frozen=True, eq=False)  # field-wise == would ask tensors for a single truth value
class AffineEraser:
    """Erase a concept from the residual stream after block ``layer``: ``x - L (R (x - b))``.

    With LEACE, ``I - L R`` is an oblique projection of rank ``hidden - rank`` fitted so that no
    linear classifier can tell the classes apart on the fitting data; ``b`` (the mean
    activation) keeps the unconditional mean where it was.

    Attributes:
        layer: block index.
        proj_left: ``L``, ``[hidden, rank]``.
        proj_right: ``R``, ``[rank, hidden]``.
        bias: ``b``, ``[hidden]`` (zeros for a non-affine eraser).
    """

    kind: ClassVar[str] = "affine_eraser"

    layer: int
    proj_left: torch.Tensor
    proj_right: torch.Tensor
    bias: torch.Tensor

    def __post_init__(self) -> None:
        hidden, rank = self.proj_left.shape
        if self.proj_right.shape != (rank, hidden) or self.bias.shape != (hidden,):
            raise ValueError(f"an eraser needs L [hidden, rank], R [rank, hidden], b [hidden]; got "
                             f"{tuple(self.proj_left.shape)}, {tuple(self.proj_right.shape)}, {tuple(self.bias.shape)}")

    @property
    def site(self) -> str:
        return block_site(self.layer)

    @property
    def rank(self) -> int:
        return int(self.proj_left.shape[1])

    @property
    def hidden_size(self) -> int:
        return int(self.proj_left.shape[0])

    def erase(self, x: torch.Tensor) -> torch.Tensor:
        """Erase ``x`` ``[..., hidden]`` in float32 at least (float64 stays float64); returns x's dtype.

        Half-precision activations are erased in float32: a bfloat16 ``R (x - b)`` would lose most of
        the component it is meant to remove.
        """
        work = torch.promote_types(x.dtype, torch.float32)
        left, right, bias = (t.to(device=x.device, dtype=work) for t in (self.proj_left, self.proj_right, self.bias))
        wide = x.to(work)
        return (wide - ((wide - bias) @ right.T) @ left.T).to(x.dtype)

    def apply(self, output: torch.Tensor, module_input: torch.Tensor | None) -> torch.Tensor:
        return self.erase(output)

    def to(self, device: torch.device | str) -> AffineEraser:
        """The same eraser with its tensors on ``device`` (kept in float32)."""
        return AffineEraser(self.layer, *(t.to(device=device, dtype=torch.float32)
                                          for t in (self.proj_left, self.proj_right, self.bias)))

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"proj_left": self.proj_left, "proj_right": self.proj_right, "bias": self.bias}

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "site": self.site, "layer": self.layer, "rank": self.rank,
                "hidden_size": self.hidden_size}


@dataclass(frozen=True, eq=False)
class LowRankDelta:
    """A weight edit kept as factors: the module ``W x`` becomes ``W x + B (A x)``.

    Served by the runtime's hook on each block's MLP output projection (`engine.runtime`).

    Attributes:
        module: qualified name of the linear module in the model (``model.layers.3.mlp.down_proj``).
        a: ``A``, ``[rank, in_features]``.
        b: ``B``, ``[out_features, rank]``.
    """

    kind: ClassVar[str] = "low_rank_delta"

    module: str
    a: torch.Tensor
    b: torch.Tensor

    def __post_init__(self) -> None:
        if self.a.ndim != 2 or self.b.ndim != 2 or self.a.shape[0] != self.b.shape[1]:
            raise ValueError(f"a delta needs A [rank, in] and B [out, rank]; got {tuple(self.a.shape)}, "
                             f"{tuple(self.b.shape)}")

    @property
    def site(self) -> str:
        return f"{MODULE_SITE}{self.module}"

    @property
    def rank(self) -> int:
        return int(self.a.shape[0])

    def apply(self, output: torch.Tensor, module_input: torch.Tensor | None) -> torch.Tensor:
        if module_input is None:
            raise ValueError(f"the delta on {self.module} needs the module's input")
        a, b = self.a.to(module_input.device, torch.float32), self.b.to(module_input.device, torch.float32)
        return (output.float() + (module_input.float() @ a.T) @ b.T).to(output.dtype)

    def to(self, device: torch.device | str) -> LowRankDelta:
        return LowRankDelta(self.module, self.a.to(device, torch.float32), self.b.to(device, torch.float32))

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"a": self.a, "b": self.b}

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "site": self.site, "module": self.module, "rank": self.rank,
                "in_features": int(self.a.shape[1]), "out_features": int(self.b.shape[0])}


KINDS: dict[str, type] = {AffineEraser.kind: AffineEraser, LowRankDelta.kind: LowRankDelta}


def component_from_parts(facts: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> Component:
    """Rebuild a component from its stored facts and tensors.

    Raises:
        ValueError: an unknown kind, or tensors that do not match it.
    """
    kind = facts.get("kind")
    try:
        if kind == AffineEraser.kind:
            return AffineEraser(int(facts["layer"]), tensors["proj_left"], tensors["proj_right"], tensors["bias"])
        if kind == LowRankDelta.kind:
            return LowRankDelta(str(facts["module"]), tensors["a"], tensors["b"])
    except KeyError as exc:
        raise ValueError(f"a stored {kind} component lacks {exc}") from None
    raise ValueError(f"unknown component kind {kind!r}; known: {', '.join(KINDS)}")


def content_hash(component: Component) -> str:
    """sha256 of a component's facts and tensor bytes: equal hashes, equal components."""
    digest = hashlib.sha256(repr(sorted(component.describe().items())).encode())
    for name, tensor in sorted(component.tensors().items()):
        t = tensor.detach().to("cpu", torch.float32).contiguous()
        digest.update(name.encode())
        digest.update(repr(tuple(t.shape)).encode())
        digest.update(t.numpy().tobytes())
    return digest.hexdigest()
