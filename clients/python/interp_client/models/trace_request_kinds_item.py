from enum import StrEnum


class TraceRequestKindsItem(StrEnum):
    ATTENTION = "attention"
    MLP = "mlp"
    RESIDUAL = "residual"

    def __str__(self) -> str:
        return str(self.value)
