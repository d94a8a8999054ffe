"""Human-facing HTML views of job results (self-contained pages, no external resources)."""
