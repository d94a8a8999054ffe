from enum import StrEnum


class EraseRequestMethod(StrEnum):
    LEACE = "leace"
    ORTH = "orth"

    def __str__(self) -> str:
        return str(self.value)
