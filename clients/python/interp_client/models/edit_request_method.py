from enum import StrEnum


class EditRequestMethod(StrEnum):
    MEMIT = "memit"
    ROME = "rome"

    def __str__(self) -> str:
        return str(self.value)
