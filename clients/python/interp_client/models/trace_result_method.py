from enum import StrEnum


class TraceResultMethod(StrEnum):
    ACTIVATION_PATCHING = "activation_patching"
    CAUSAL_TRACE = "causal_trace"

    def __str__(self) -> str:
        return str(self.value)
