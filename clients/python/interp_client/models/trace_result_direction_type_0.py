from enum import StrEnum


class TraceResultDirectionType0(StrEnum):
    DENOISING = "denoising"
    NOISING = "noising"

    def __str__(self) -> str:
        return str(self.value)
