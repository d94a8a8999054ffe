from enum import StrEnum


class SteeringSpecPositions(StrEnum):
    ALL = "all"
    GENERATED = "generated"
    PROMPT = "prompt"

    def __str__(self) -> str:
        return str(self.value)
