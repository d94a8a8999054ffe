"""The stack's configuration (`Settings`, read once from ``INTERP_*`` variables) and its structured logs."""
