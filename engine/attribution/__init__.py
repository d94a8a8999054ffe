"""Attribution of model outputs to input tokens: Integrated Gradients (and, in its issue, SHAP)."""
