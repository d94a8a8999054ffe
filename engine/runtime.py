"""The intervention runtime: hooks installed once per resident model, a per-row table per pass.

Every operation that changes what the model computes is an intervention bound to one row of one
forward pass, never a mutation of shared model state. The runtime registers its forward hooks
when the model becomes resident (and removes them when it leaves); a hook does nothing
unless a `PassPlan` is active, and a plan is active only inside ``with runtime.active(plan):``,
which clears it in ``finally``. So a request that fails leaves nothing behind, and requests with
different interventions share one batched forward pass, each row seeing only its own.

Intervention kinds: additive steering vectors on the residual stream (block outputs), and the
components of model variants (`engine.components`), per row: an affine eraser at a block's output,
and a low-rank weight delta ``W x + B (A x)`` on an editable linear module (each block's MLP
output projection, where ROME and MEMIT write). The runtime hooks (through `engine.hooks`) every
``residual`` site and every ``mlp_value`` site (`engine.sites`); the latter call
``plan.variants.apply("module.<name>", output, input)``, so an edited variant is served without a
copy of the base weights. Within one block output the variant's components apply first and
steering after: the variant is the model, steering acts on it.

On a model split over several devices (``device_map``: blocks on different GPUs), each hook runs
on its block's device; `InterventionRuntime.place` names it per site, and the batch's tables are
built with it (`engine.pass_plan.Place`), so a pass moves no steering or variant tensor.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from engine.adapters import linear_dims
from engine.components import Component, LowRankDelta, block_site
from engine.hooks import Intercept, intercept
from engine.loading import LoadedModel, module_device
from engine.pass_plan import PassPlan, VariantTable
from engine.sites import Site, component_site, locate, mlp_out_names


class InterventionRuntime:
    """The hooks of one resident model and the plan of the pass in flight.

    One pass at a time per model: the batcher runs every forward pass of a model on one thread,
    and `active` enforces it with a lock rather than trusting it.
    """

    def __init__(self, lm: LoadedModel) -> None:
        self.lm = lm
        self._plan: PassPlan | None = None
        self._owner: int | None = None  # the thread running the active pass
        self._pass_lock = threading.Lock()
        self._hooked = 0  # hooks installed now
        self._modules = editable_modules(lm)
        # Variant sites are stored as strings (``block.<l>``, ``module.<name>``): the hooked sites by that name.
        self._sites = {component_site(lm, site): site for site in served_sites(lm)}
        self._devices = {name: module_device(locate(lm, site)[0]) for name, site in self._sites.items()}
        # The variant table checked last: a generation's passes share one, checked at its first pass.
        self._checked: weakref.ref[VariantTable] | None = None

    def place(self, site: str) -> torch.device:
        """The device ``site`` (``block.<l>``, ``module.<name>``) computes on: the model's own for one device."""
        return self._devices.get(site) or self.lm.device

    def check_sites(self, sites: Iterable[str]) -> None:
        """Refuse sites this runtime has no hook for, rather than silently not applying their components.

        Raises:
            ValueError: a site other than a block output or an editable module's output.
        """
        if missing := sorted(set(sites) - self._sites.keys()):
            example = next(iter(self._modules), "")
            raise ValueError(f"this runtime cannot apply components at {', '.join(missing)}: it serves the "
                             f"outputs of blocks 0..{self.lm.n_layers - 1} and of the MLP output projections "
                             f"(module.{example} and the like)")

    def check_components(self, components: Iterable[Component]) -> None:
        """`check_sites`, and that every weight delta has its module's shape.

        Raises:
            ValueError: an unserved site, or a delta whose ``A`` or ``B`` does not fit its module.
        """
        components = list(components)
        self.check_sites(c.site for c in components)
        for c in components:
            if isinstance(c, LowRankDelta):
                n_in, n_out = linear_dims(self._modules[c.module])
                if (c.a.shape[1], c.b.shape[0]) != (n_in, n_out):
                    raise ValueError(f"the delta on {c.module} maps {c.a.shape[1]} -> {c.b.shape[0]} features; "
                                     f"the module maps {n_in} -> {n_out}")

    @property
    def hook_count(self) -> int:
        """Hooks this runtime has registered (for tests: the same before and after any request)."""
        return self._hooked

    @contextmanager
    def installed(self) -> Iterator[InterventionRuntime]:
        """Install the hooks for as long as the model is resident; remove them after."""
        if self._hooked:
            raise RuntimeError("the runtime's hooks are already installed")
        hooks = {site: self._block_hook(site.layer) if site.kind == "residual" else self._module_hook(name)
                 for name, site in self._sites.items()}
        try:
            with intercept(self.lm, hooks):
                self._hooked = len(hooks)
                yield self
        finally:
            self._hooked = 0

    @contextmanager
    def active(self, plan: PassPlan) -> Iterator[None]:
        """Make ``plan`` the one the hooks apply, for the passes run inside the block.

        Raises:
            ValueError: the plan has variant components at a site no hook serves.
            RuntimeError: another pass is in flight on this model.
        """
        checked = self._checked() if self._checked is not None else None
        if plan.variants is not checked:
            self.check_components(plan.variants.components)
            self._checked = weakref.ref(plan.variants)
        if not self._pass_lock.acquire(blocking=False):
            raise RuntimeError("another forward pass is in flight on this model")
        try:
            self._owner = threading.get_ident()
            self._plan = plan
            yield
        finally:
            self._plan = None
            self._owner = None
            self._pass_lock.release()

    def _block_hook(self, layer: int) -> Intercept:
        site = block_site(layer)

        def hook(hidden: torch.Tensor, block_input: torch.Tensor | None) -> torch.Tensor | None:
            plan = self._plan
            if plan is None or self._owner != threading.get_ident():
                # No plan, or a pass from another thread (say, an activation reading): leave it alone.
                return None
            if not plan.variants.empty:
                hidden = plan.variants.apply(site, hidden, block_input)
            return plan.steer(layer, hidden)

        return hook

    def _module_hook(self, site: str) -> Intercept:
        def hook(output: torch.Tensor, module_input: torch.Tensor | None) -> torch.Tensor | None:
            plan = self._plan
            if plan is None or self._owner != threading.get_ident() or site not in plan.variants.sites:
                return None  # the common case costs a dict lookup: most passes edit no module
            return plan.variants.apply(site, output, module_input)

        return hook


def served_sites(lm: LoadedModel) -> list[Site]:
    """The sites the runtime hooks: every block's output (``residual``) and MLP output projection's
    output (``mlp_value``). Other modules are not hooked, so that a pass pays for two hooks per
    block, not one per linear layer."""
    layers = range(lm.n_layers)
    return [*(Site("residual", layer) for layer in layers), *(Site("mlp_value", layer) for layer in layers)]


def editable_modules(lm: LoadedModel) -> dict[str, nn.Module]:
    """The linear modules weight deltas may target, by qualified name: each block's MLP output projection.

    ROME and MEMIT write there (the MLP's value matrix, ``mlp_value`` sites).
    """
    return {name: lm.model.get_submodule(name) for name in mlp_out_names(lm)}
