"""The masks shap's Partition explainer will ask for, known before it asks, when its budget does not bind.

The Partition explainer (``shap.explainers.PartitionExplainer.owen``) walks the masker's cluster
tree from a priority queue: every item ``(m00, node)`` is expanded into the two masks
``m00 | left(node)`` and ``m00 | right(node)``, and spawns the four items ``(m00, left)``,
``(m00, right)``, ``(m01, left)``, ``(m10, right)`` (no fixed context). The priorities (which
depend on the model's outputs) only decide the *order*; when the budget is large enough for the
whole tree, every item is expanded and the set of masks is known from the tree alone.

It asks for them in a chain of calls whose batches grow with the queue (1, 1, 2, 8, 24, 48 rows for a
10-token prompt), each call a forward pass that streams every weight of the model once. Evaluating
the whole predicted set up front, sorted so that rows share prefixes, turns that chain into a few
large passes; the explainer's calls are then answered from what was computed. A wrong prediction
(a later ``shap`` changing its walk) costs only time: rows not predicted are computed when asked.
"""

from __future__ import annotations

import numpy as np


def leaf_sets(clustering: np.ndarray) -> list[np.ndarray]:
    """``[2M - 1]`` boolean masks ``[M]``: the leaves under each node of a scipy-style linkage.

    Args:
        clustering: ``[M - 1, >= 2]``; row ``j`` merges nodes ``clustering[j, 0]`` and
            ``clustering[j, 1]`` into node ``M + j``.
    """
    m = clustering.shape[0] + 1
    sets = [np.eye(m, dtype=bool)[i] for i in range(m)]
    for left, right in clustering[:, :2].astype(np.int64):
        sets.append(sets[left] | sets[right])
    return sets


def partition_masks(clustering: np.ndarray, max_evals: int) -> np.ndarray | None:
    """Every mask the Partition explainer evaluates for this tree, or None when the budget binds.

    Args:
        clustering: the masker's linkage ``[M - 1, 4]`` (children, distance, size).
        max_evals: the explainer's budget, including its first two evaluations (nothing and
            everything kept).

    Returns:
        ``[T, M]`` boolean masks (True: kept), the first two being all-False and all-True; None
        when the whole tree needs more than the budget, so that the priorities would decide which
        masks are asked for.
    """
    m = clustering.shape[0] + 1
    sets = leaf_sets(clustering)
    root = 2 * m - 2
    masks = [np.zeros(m, dtype=bool), np.ones(m, dtype=bool)]
    # The explainer stops filling a batch once evaluated + batch reaches max_evals - 2; stay clear of it.
    budget = max_evals - 3
    frontier = [(np.zeros(m, dtype=bool), root)]
    while frontier:
        children = []
        for m00, node in frontier:
            if node < m or clustering[node - m, 2] < 0:  # a leaf (or a node the explainer does not split)
                continue
            left, right = (int(c) for c in clustering[node - m, :2])
            m10, m01 = m00 | sets[left], m00 | sets[right]
            masks += [m10, m01]
            if len(masks) - 2 > budget:
                return None
            children += [(m00, left), (m00, right), (m01, left), (m10, right)]
        frontier = children
    return np.stack(masks)
