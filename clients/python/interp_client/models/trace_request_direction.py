from enum import StrEnum


class TraceRequestDirection(StrEnum):
    DENOISING = "denoising"
    NOISING = "noising"

    def __str__(self) -> str:
        return str(self.value)
