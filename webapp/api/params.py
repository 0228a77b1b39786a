"""Query-parameter types for the API's Schemas: validated by pydantic, refused with sentences a person reads.

pydantic's own wording ("Input should be a valid integer, unable to parse string as an integer")
names no parameter; these types say "limit must be an integer (got 'abc')." and document
themselves in the OpenAPI document like the plain type with its bounds or choices.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import BeforeValidator, ValidationInfo, WithJsonSchema
from pydantic_core import PydanticCustomError

from distill_core.untrusted import text_problem


def _refuse(kind: str, sentence: str, info: ValidationInfo, value: Any, **context: Any) -> PydanticCustomError:
    return PydanticCustomError(kind, sentence, {"name": info.field_name, "got": repr(str(value)[:40]), **context})


def integer(low: int, high: int):
    """An integer in [low, high], from a query string's decimal text (no signs but '-', no exponents)."""

    def parse(value: Any, info: ValidationInfo) -> int:
        text = value.strip() if isinstance(value, str) else ""
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif text.isascii() and text.removeprefix("-").isdecimal() and len(text) <= 20:
            number = int(text)
        else:
            raise _refuse("integer", "{name} must be an integer (got {got}).", info, value)
        if not low <= number <= high:
            raise _refuse("range", "{name} must be between {low} and {high} (got {got}).", info, number, low=low,
                          high=high)
        return number

    return Annotated[int, BeforeValidator(parse), WithJsonSchema({"type": "integer", "minimum": low, "maximum": high})]


def one_of(values: Sequence[str], shown: Sequence[str] | None = None):
    """One of `values` (the message lists `shown`, e.g. the upper-case spellings only)."""

    def parse(value: Any, info: ValidationInfo) -> str:
        if value not in values:
            raise _refuse("choice", "{name} must be one of {choices} (got {got}).", info, value,
                          choices=", ".join(shown or values))
        return value

    return Annotated[str, BeforeValidator(parse), WithJsonSchema({"type": "string", "enum": list(values)})]


def text(limit: int):
    """Free text of at most `limit` characters that a database can compare (no NUL, valid Unicode)."""

    def parse(value: Any, info: ValidationInfo) -> str:
        if not isinstance(value, str):
            raise _refuse("text", "{name} must be text (got {got}).", info, value)
        problem = text_problem(value)
        if problem:
            raise _refuse("text", "{name} {problem}.", info, value, problem=problem)
        if len(value) > limit:
            raise _refuse("length", "{name} must be at most {limit} characters.", info, value, limit=limit)
        return value

    return Annotated[str, BeforeValidator(parse), WithJsonSchema({"type": "string", "maxLength": limit})]
