from enum import StrEnum


class AttributeRequestPrecision(StrEnum):
    FLOAT32 = "float32"
    MODEL = "model"

    def __str__(self) -> str:
        return str(self.value)
