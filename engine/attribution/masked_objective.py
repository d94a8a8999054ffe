"""The model function SHAP's explainer calls: masked token ids in, one objective per target out.

Every masked input has the prompt's length, so a batch needs no padding: rows are scattered into
the full sequence (``input + target_ids[:-1]``), sorted, run ``batch_size`` at a time through
`~engine.attribution.shared_prefix.forward_shared_prefixes`, and only the last ``n_targets``
positions are unembedded. Only ``[batch, n_targets]`` figures leave the device.

Each distinct row is computed once per explanation: results are kept by row, so rows evaluated
ahead of the explainer (`MaskedObjective.prefetch`, see `~engine.attribution.partition_plan`) or
asked for twice are answered without the model.

Progress counts the rows computed, also within a pass: a prefetch is one or two large passes that
hold nearly all of an explanation's work, so each pass reports after each of its levels (in rows,
by the share of its row-positions done), not only at its end.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from engine.attribution.inputs import Objective, target_objective
from engine.attribution.prefix_store import PrefixStore
from engine.attribution.shared_prefix import LevelCallback, forward_shared_prefixes
from engine.loading import LoadedModel

#: Called after each model batch with (masked inputs evaluated, expected total); may raise to stop the work.
BatchCallback = Callable[[int, int], None]


class MaskedObjective:
    """Masked attributable ids in, objectives out, each distinct row computed once.

    Args:
        lm: the resident model.
        input_ids: ``[n_inputs]``.
        target_ids: ``[n_targets]``.
        positions: ``[n_attributable]`` indices of the attributable inputs.
        objective: what is explained per target.
        batch_size: rows per forward pass.
        budget: ``max_evals``, reported to ``on_batch`` as the total until a prefetch knows better.
        on_batch: progress/cancel callback, called after every forward pass.
    """

    def __init__(self, lm: LoadedModel, input_ids: Sequence[int], target_ids: Sequence[int], positions: Sequence[int],
                 *, objective: Objective, batch_size: int, budget: int, on_batch: BatchCallback | None) -> None:
        self.lm = lm
        self.head = lm.adapter.unembedding(lm.model)
        device = lm.device
        # Target t is predicted at position len(input_ids) - 1 + t, so the sequence ends with every
        # target but the last, and the targets' logits are those of the last n_targets positions.
        self.template = torch.tensor([*input_ids, *target_ids[:-1]], dtype=torch.long, device=device)
        self.targets = torch.tensor(list(target_ids), dtype=torch.long, device=device)
        self.positions = torch.tensor(list(positions), dtype=torch.long, device=device)
        self.attributable_ids = np.asarray([input_ids[p] for p in positions], dtype=np.int64)
        self.objective = objective
        self.batch_size = batch_size
        self.total = budget
        self.on_batch = on_batch
        self.evaluations = 0  # masked inputs the explainer asked for
        self.computed = 0  # distinct rows run through the model
        self.reported = 0  # rows last reported to ``on_batch`` (reports only grow)
        # (objective, log p) per row, ``[n_targets]`` each, keyed by the row's bytes.
        self.results: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}
        # The explainer's later calls share prefixes with its earlier ones: keep what was computed.
        self.prefixes = PrefixStore()

    @property
    def f_input(self) -> np.ndarray | None:
        """``[n_targets]`` the objective at the unmasked input, once evaluated."""
        found = self.results.get(self.attributable_ids.tobytes())
        return None if found is None else found[0]

    @property
    def log_prob_input(self) -> np.ndarray | None:
        """``[n_targets]`` log p of each target at the unmasked input, once evaluated."""
        found = self.results.get(self.attributable_ids.tobytes())
        return None if found is None else found[1]

    def prefetch(self, masked: np.ndarray) -> None:
        """Compute rows before they are asked for; progress is then reported against their count.

        Args:
            masked: ``[rows, n_attributable]`` token ids.
        """
        self.total = len(masked)
        self._compute(np.asarray(masked, dtype=np.int64).reshape(-1, len(self.attributable_ids)))

    def __call__(self, masked: np.ndarray) -> np.ndarray:
        """Evaluate masked inputs.

        Args:
            masked: ``[batch, n_attributable]`` token ids (attributable positions only).

        Returns:
            ``[batch, n_targets]`` float64 objectives.
        """
        masked = np.asarray(masked, dtype=np.int64).reshape(-1, len(self.attributable_ids))
        self.evaluations += len(masked)
        self._compute(masked)
        return np.stack([self.results[row.tobytes()][0] for row in masked])

    def _compute(self, masked: np.ndarray) -> None:
        """Run the rows not computed yet, sorted, ``batch_size`` per forward pass."""
        missing = {row.tobytes(): row for row in masked if row.tobytes() not in self.results}
        if not missing:
            return
        rows = np.stack(list(missing.values()))
        # Sorted, so that each forward pass gets rows with long common prefixes to share.
        rows = rows[np.lexsort(rows.T[::-1])]
        for start in range(0, len(rows), self.batch_size):
            chunk = rows[start : start + self.batch_size]

            def within(share: float, before: int = self.computed, size: int = len(chunk)) -> None:
                self._report(before + int(share * size))

            objective, log_prob = self._forward(torch.from_numpy(chunk), within)
            for row, value, lp in zip(chunk, objective, log_prob, strict=True):
                self.results[row.tobytes()] = (value, lp)
            self.computed += len(chunk)
            self._report(self.computed)

    def _report(self, done: int) -> None:
        """Tell ``on_batch`` that ``done`` rows are computed, when that is more than last told."""
        if self.on_batch is not None and done > self.reported:
            self.reported = done
            # Partition fills its last batch before checking the budget, so it can overshoot.
            self.on_batch(done, max(self.total, done))

    @torch.inference_mode()
    def _forward(self, masked: torch.Tensor, on_level: LevelCallback) -> tuple[np.ndarray, np.ndarray]:
        """One forward pass over ``[rows, n_attributable]`` masked ids -> (objective, log p), ``[rows, n_targets]``."""
        rows = masked.shape[0]
        ids = self.template.expand(rows, -1).clone()
        ids[:, self.positions] = masked.to(ids.device)
        n_targets = self.targets.shape[0]
        # Same length in every row, no padding; prefixes shared by several rows are computed once.
        hidden = forward_shared_prefixes(self.lm, ids, n_targets, store=self.prefixes,
                                         on_level=on_level)  # [rows, n_targets, hidden]
        # The head on a contiguous 2-D input: a sliced 3-D one made torch fall back to a batched
        # matmul against the weight expanded per row (measured 9x slower on CPU).
        logits = self.head(hidden.reshape(rows * n_targets, -1)).float().reshape(rows, n_targets, -1)
        objective, log_prob = target_objective(logits, self.targets, self.objective)
        both = torch.stack([objective, log_prob]).cpu().double().numpy()  # [2, rows, n_targets]: all that leaves
        return both[0], both[1]
