from enum import StrEnum


class AttributeRequestObjective(StrEnum):
    LOGIT = "logit"
    LOG_PROB = "log_prob"
    PROB = "prob"

    def __str__(self) -> str:
        return str(self.value)
