from enum import StrEnum


class ExtractVectorRequestMethod(StrEnum):
    MEAN_DIFF = "mean_diff"
    PCA = "pca"

    def __str__(self) -> str:
        return str(self.value)
