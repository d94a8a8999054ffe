from enum import StrEnum


class DiagnoseRequestKindsItem(StrEnum):
    ATTENTION = "attention"
    MLP = "mlp"
    RESIDUAL = "residual"

    def __str__(self) -> str:
        return str(self.value)
