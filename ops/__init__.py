"""The operations layer: one module per operation, used alike by the API and the worker."""
