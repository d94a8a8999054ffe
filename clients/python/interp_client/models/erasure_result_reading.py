from enum import StrEnum


class ErasureResultReading(StrEnum):
    ALL = "all"
    LAST = "last"
    MEAN = "mean"

    def __str__(self) -> str:
        return str(self.value)
