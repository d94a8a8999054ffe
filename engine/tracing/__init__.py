"""Activation patching and causal tracing: restore clean activations into corrupted runs."""
