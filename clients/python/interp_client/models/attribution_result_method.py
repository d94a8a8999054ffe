from enum import StrEnum


class AttributionResultMethod(StrEnum):
    INTEGRATED_GRADIENTS = "integrated_gradients"
    SHAP = "shap"

    def __str__(self) -> str:
        return str(self.value)
