"""Concept erasure: fit LEACE (or orthogonal) erasers on labelled activations and verify them.

`activations` streams pooled activations batch by batch, `fitter` turns them into frozen
`AffineEraser` components (`engine.components`), `probes` checks with logistic-regression probes
that the concept is gone, and `pipeline` runs the whole job for the `/erase` endpoint.
"""
