from enum import StrEnum


class ContinuationFinishReason(StrEnum):
    LENGTH = "length"
    STOP = "stop"

    def __str__(self) -> str:
        return str(self.value)
