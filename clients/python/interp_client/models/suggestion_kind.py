from enum import StrEnum


class SuggestionKind(StrEnum):
    EDIT = "edit"
    STEERING = "steering"

    def __str__(self) -> str:
        return str(self.value)
