from enum import StrEnum


class AttributeRequestAggregate(StrEnum):
    TOKEN = "token"
    WORD = "word"

    def __str__(self) -> str:
        return str(self.value)
