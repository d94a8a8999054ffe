from enum import StrEnum


class AttributeRequestRule(StrEnum):
    ADAPTIVE = "adaptive"
    GAUSS_LEGENDRE = "gauss_legendre"
    RIEMANN_TRAPEZOID = "riemann_trapezoid"

    def __str__(self) -> str:
        return str(self.value)
