"""The base of every spec section (and of the augment ops' parameters, which the spec collects
from their registry): unknown keys are errors, never silently ignored, and booleans are not
numbers."""
from __future__ import annotations

from typing import get_args

from pydantic import BaseModel, ConfigDict, model_validator


def _is_number_field(annotation) -> bool:
    return annotation in (int, float) or any(_is_number_field(a) for a in get_args(annotation))


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @model_validator(mode="before")
    @classmethod
    def _no_bools_for_numbers(cls, data):
        # pydantic's lax mode reads `true` as 1; YAML's `1e-3` arrives as a string and still needs
        # that lax mode, so booleans alone are refused here.
        if isinstance(data, dict):
            for name, field in cls.model_fields.items():
                if isinstance(data.get(name), bool) and _is_number_field(field.annotation):
                    raise ValueError(f"{name} must be a number, got {data[name]}")
        return data
