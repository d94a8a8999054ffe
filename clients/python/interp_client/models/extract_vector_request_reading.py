from enum import StrEnum


class ExtractVectorRequestReading(StrEnum):
    LAST = "last"
    MEAN = "mean"

    def __str__(self) -> str:
        return str(self.value)
