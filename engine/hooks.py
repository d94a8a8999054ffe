"""Forward hooks on sites (`engine.sites`), for exactly as long as a ``with`` block.

Three ways to hook a site, all removing their hooks in ``finally`` however the block ends:

- `record` keeps the sites' tensors of a forward pass and, unless told otherwise, cuts the pass
  short once every site was seen (the blocks after the deepest one and the LM head are not needed);
- `patch` lets a function replace a site's tensor for the rest of the pass;
- `intercept` is what both are built on, and what the intervention runtime installs for as long
  as its model is resident: its hooks see every thread's passes and decide per pass themselves.

`record` and `patch` act only on forward passes of their own thread (`record`: only on the passes
it runs): the model is shared, and another thread's pass (a generation in the API) must go through
untouched.

Also here, the forward helpers that reading one prompt's sites needs: `embed`, `last_logits` and
`record_sites` (every layer of some kinds, and the last position's logits, in one pass).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import torch
from torch import nn

from engine.loading import LoadedModel
from engine.sites import Site, SiteKind, hidden_of, locate, with_hidden

#: Maps a site's tensor ``[batch, seq, dim]`` to a replacement, or returns None to leave it.
Rewrite = Callable[[torch.Tensor], torch.Tensor | None]
#: A `Rewrite` that is also given its module's first input (the site itself for an input site):
#: a weight delta on the module reads it.
Intercept = Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor | None]

T = TypeVar("T")


@contextmanager
def intercept(lm: LoadedModel, hooks: Mapping[Site, Intercept]) -> Iterator[None]:
    """Hook every site of ``hooks`` on every thread's passes, for the duration of the block.

    An output site gets a forward hook, an input site a forward pre-hook, so a replacement is what
    the rest of the pass computes on. Hooks on one module run in the order they were installed.
    """
    handles: list[torch.utils.hooks.RemovableHandle] = []
    try:
        for site, fn in hooks.items():
            module, side = locate(lm, site)
            if side == "output":
                handles.append(module.register_forward_hook(_on_output(fn)))
            else:
                handles.append(module.register_forward_pre_hook(_on_input(fn)))
        yield
    finally:
        for handle in handles:
            handle.remove()


def _on_output(fn: Intercept) -> Callable[[nn.Module, Any, Any], Any]:
    def hook(module: nn.Module, args: Any, output: Any) -> Any:
        replaced = fn(hidden_of(output), args[0] if args else None)
        return None if replaced is None else with_hidden(output, replaced)
    return hook


def _on_input(fn: Intercept) -> Callable[[nn.Module, Any], Any]:
    def hook(module: nn.Module, args: Any) -> Any:
        hidden = hidden_of(args)
        replaced = fn(hidden, hidden)
        return None if replaced is None else with_hidden(args, replaced)
    return hook


@contextmanager
def patch(lm: LoadedModel, rewrites: Mapping[Site, Rewrite]) -> Iterator[None]:
    """Let each function replace its site's tensor, in this thread's passes run inside the block.

    Args:
        lm: the model.
        rewrites: site -> function of the site's tensor ``[batch, seq, dim]``; a returned tensor
            replaces it for the rest of the pass.
    """
    owner = threading.get_ident()

    def guarded(fn: Rewrite) -> Intercept:
        def hook(hidden: torch.Tensor, module_input: torch.Tensor | None) -> torch.Tensor | None:
            return fn(hidden) if threading.get_ident() == owner else None
        return hook

    with intercept(lm, {site: guarded(fn) for site, fn in rewrites.items()}):
        yield


class _RecordedError(Exception):
    """Raised by a recording hook once every site of the pass is recorded: the rest is not needed."""

    def __init__(self, recording: Recording) -> None:
        super().__init__("every site is recorded")
        self.recording = recording


class Recording:
    """What `record` yields: how to run a recorded pass, and the sites' tensors of the latest one.

    Only passes run through `run` are recorded, in the thread that calls it: any other pass (a
    generation in another thread, a plain call of the model inside the block) goes untouched.

    Attributes:
        sites: the sites recorded.
        tensors: site -> its tensor in the latest pass (detached, the model's dtype): ``[batch, seq,
            dim]``, or ``[n, dim]`` when positions were given.
    """

    def __init__(self, sites: Iterable[Site], *, positions: torch.Tensor | None, rows: torch.Tensor | None,
                 stop: bool) -> None:
        self.sites = tuple(dict.fromkeys(sites))
        if not self.sites:
            raise ValueError("no site to record")
        if positions is not None and rows is None:
            rows = torch.arange(len(positions), device=positions.device)
        self.tensors: dict[Site, torch.Tensor] = {}
        self._positions, self._rows, self._stop = positions, rows, stop
        self._runner: int | None = None  # the thread whose pass `run` is running

    def run(self, forward: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """Run one forward pass, ``forward(*args, **kwargs)``, recording the sites.

        Returns:
            The pass's output, or None when it stopped after the last site.

        Raises:
            RuntimeError: a site was not reached in the pass.
        """
        self.tensors.clear()
        self._runner = threading.get_ident()
        try:
            output: T | None = forward(*args, **kwargs)
        except _RecordedError as done:
            if done.recording is not self:
                raise
            output = None
        finally:
            self._runner = None
        if missing := [str(site) for site in self.sites if site not in self.tensors]:
            raise RuntimeError(f"the forward pass did not reach the sites {', '.join(missing)}")
        return output

    def hook(self, site: Site) -> Intercept:
        """The hook that records ``site``, and stops the pass once it completes the recording."""

        def keep(hidden: torch.Tensor, module_input: torch.Tensor | None) -> None:
            if threading.get_ident() != self._runner:
                return
            kept = hidden if self._positions is None else hidden[self._rows, self._positions]
            self.tensors[site] = kept.detach()
            if self._stop and len(self.tensors) == len(self.sites):
                raise _RecordedError(self)

        return keep


@contextmanager
def record(lm: LoadedModel, sites: Iterable[Site], *, positions: torch.Tensor | None = None,
           rows: torch.Tensor | None = None, stop: bool = True) -> Iterator[Recording]:
    """Record the sites' tensors in the passes run through the yielded `Recording`.

    Args:
        lm: the model.
        sites: what to record.
        positions: ``[n]`` token positions to keep, the ``i``-th from batch row ``rows[i]``; None
            keeps every position of every row.
        rows: ``[n]`` the batch row of each position; ``0..n-1`` (one position per row) when None.
        stop: end each pass once every site is recorded, whatever the sites' order in the pass.

    Raises:
        ValueError: no site to record.
    """
    recording = Recording(sites, positions=positions, rows=rows, stop=stop)
    with intercept(lm, {site: recording.hook(site) for site in recording.sites}):
        yield recording


@torch.inference_mode()
def record_sites(lm: LoadedModel, inputs_embeds: torch.Tensor, kinds: Sequence[SiteKind], *,
                 positions: list[int] | None = None) -> tuple[dict[SiteKind, torch.Tensor], torch.Tensor]:
    """One full forward pass that records every layer's tensor at each site kind.

    Args:
        lm: the model.
        inputs_embeds: ``[1, seq, hidden]`` token embeddings (what `embed` gives; GPT-2 adds its
            position embeddings itself).
        kinds: the site kinds to record.
        positions: record only these positions (all when None).

    Returns:
        ``(recorded, logits)``: kind -> ``[n_layers, n_positions, dim]`` in the model's dtype, and
        the last position's logits ``[vocab]`` (computed by `last_logits`, as restorations are).
    """
    seq = inputs_embeds.shape[1]
    index = torch.arange(seq, device=lm.device) if positions is None else torch.tensor(positions, device=lm.device)
    layers = range(lm.n_layers)
    sites = [Site(kind, layer) for kind in kinds for layer in layers]
    with record(lm, sites, positions=index, rows=torch.zeros_like(index), stop=False) as recording:
        logits = recording.run(last_logits, lm, inputs_embeds=inputs_embeds, use_cache=False)
    if logits is None:
        raise RuntimeError("a recording that does not stop ended its pass early")
    stacked = {kind: torch.stack([recording.tensors[Site(kind, layer)] for layer in layers]) for kind in kinds}
    return stacked, logits[0]


def last_logits(lm: LoadedModel, **inputs: Any) -> torch.Tensor:
    """Run the model and return the last position's logits ``[batch, vocab]``.

    The base model's output is already final-normed; the unembedding is applied here to the last
    position as one contiguous ``[batch, hidden]`` matrix: transformers' ``logits_to_keep`` hands
    it a strided 3D slice, which CPU matmul serves with a batched kernel several times slower.
    """
    hidden = lm.model.base_model(**inputs).last_hidden_state[:, -1]
    return lm.adapter.unembedding(lm.model)(hidden.contiguous())


def embed(lm: LoadedModel, input_ids: list[int]) -> torch.Tensor:
    """Token embeddings ``[1, seq, hidden]`` of ``input_ids`` (no position embeddings)."""
    ids = torch.tensor([input_ids], device=lm.device)
    with torch.inference_mode():
        return lm.adapter.embedding(lm.model)(ids)
