"""CEL validation rules shared by the CRD schema and the pydantic models.

Each rule is declared once: the CRD generator emits it as an
`x-kubernetes-validations` entry and the model raises its `message`, so a
manifest gets the same words from the API server and from local validation.
"""

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CelRule:
    """One `x-kubernetes-validations` entry."""

    rule: str
    """CEL expression that must evaluate to true; `self` is the node that owns the rule."""
    message: str
    """Error text shown when the rule fails, also raised by the pydantic model."""

    def to_schema(self) -> dict[str, str]:
        return {"rule": self.rule, "message": self.message}


def validations(*rules: CelRule) -> dict[str, Any]:
    """`json_schema_extra` for a model or field that owns `rules`."""
    return {"x-kubernetes-validations": [rule.to_schema() for rule in rules]}
