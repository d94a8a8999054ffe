from enum import StrEnum


class AttributeRequestBaselineType0(StrEnum):
    MASK = "mask"
    PAD = "pad"
    UNK = "unk"
    ZERO = "zero"

    def __str__(self) -> str:
        return str(self.value)
