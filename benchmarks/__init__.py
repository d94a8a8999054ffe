"""Benchmarks of the running service (``python -m benchmarks.service``)."""
