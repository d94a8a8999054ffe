from enum import StrEnum


class EditResultMethod(StrEnum):
    MEMIT = "memit"
    ROME = "rome"

    def __str__(self) -> str:
        return str(self.value)
