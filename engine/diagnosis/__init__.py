"""Reading a failure off attribution, the logit lens and causal tracing, and proposing fixes."""
