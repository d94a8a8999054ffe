"""The logit lens: read the residual stream through the final norm and the unembedding."""
