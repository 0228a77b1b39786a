"""JSON Schema (OpenAPI 3.1) for a Django form's inputs, read from the form's own field declarations.

The API validates its bodies with the web forms, so the schema of a request body is generated from
the same fields: type, bounds (min_value/max_value and Min/MaxValueValidator), length, regex
validators, choices, initial values (the defaults the API fills in) and help text. Nothing here
knows a field by name; callers pass what a field's declaration cannot say (choices filled in at
runtime, bounds checked in a clean_<name> method).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.core import validators as dj

# A database id: the API refuses anything outside 1..2**63-1 before the form sees it.
MAX_ID = 2**63 - 1


@dataclass(frozen=True)
class Range:
    """Bounds a form checks in code (clean_<name>) rather than in the field's declaration."""

    low: float | None
    high: float | None
    low_exclusive: bool = False
    high_exclusive: bool = False

    def schema(self) -> dict[str, float]:
        low_key = "exclusiveMinimum" if self.low_exclusive else "minimum"
        high_key = "exclusiveMaximum" if self.high_exclusive else "maximum"
        return {key: bound for key, bound in ((low_key, self.low), (high_key, self.high)) if bound is not None}


@dataclass(frozen=True)
class FormSpec:
    """What a form's declaration cannot say about its API inputs.

    `only`: the inputs the endpoint accepts (default: every field). `ranges`: bounds checked in
    clean_<name>. `choices`: choices filled in when the form is built. `required` / `optional`:
    overrides of the endpoint (an input the view demands, or one it fills in). `nullable`: JSON
    bodies may send null for an optional input (the view then drops it).
    """

    only: tuple[str, ...] = ()
    ranges: Mapping[str, Range] = field(default_factory=dict)
    choices: Mapping[str, Iterable[tuple[Any, Any]]] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    nullable: bool = True


def _choice_values(choices: Iterable[tuple[Any, Any]]) -> list[str]:
    values: list[str] = []
    for key, label in choices:
        if isinstance(label, (list, tuple)):  # an optgroup: (group label, [(key, label), ...])
            values += _choice_values(label)
        elif key not in ("", None):
            values.append(str(key))
    return values


def _bounds(f: forms.Field) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for v in f.validators:
        if isinstance(v, dj.MinValueValidator):
            out["minimum"] = max(out.get("minimum", v.limit_value), v.limit_value)
        elif isinstance(v, dj.MaxValueValidator):
            out["maximum"] = min(out.get("maximum", v.limit_value), v.limit_value)
        elif isinstance(v, dj.MaxLengthValidator):
            out["maxLength"] = v.limit_value
        elif isinstance(v, dj.RegexValidator) and not v.inverse_match and v.regex.pattern.isascii():
            # Python's \Z is JavaScript's $ (JSON Schema patterns are ECMA-262).
            out["pattern"] = v.regex.pattern.replace("\\Z", "$")
    return out


def field_schema(f: forms.Field, *, choices: Iterable[tuple[Any, Any]] | None = None,
                 value_range: Range | None = None) -> dict[str, Any]:
    """The JSON Schema of one form field's value, as the API accepts it."""
    if isinstance(f, forms.ModelChoiceField):
        schema: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
    elif isinstance(f, forms.ChoiceField):
        schema = {"type": "string", "enum": _choice_values(choices if choices is not None else f.choices)}
    elif isinstance(f, forms.BooleanField):
        schema = {"type": "boolean"}
    elif isinstance(f, forms.FloatField):  # before IntegerField, its base class
        schema = {"type": "number", **_bounds(f)}
    elif isinstance(f, forms.IntegerField) and not isinstance(f, forms.DecimalField):
        schema = {"type": "integer", **_bounds(f)}
    elif isinstance(f, forms.FileField):
        schema = {"type": "string", "format": "binary"}
    elif isinstance(f, forms.CharField):
        schema = {"type": "string", **_bounds(f)}
        if f.required:
            schema["minLength"] = 1
    else:  # a field type this generator does not know yet: say so rather than guess
        raise TypeError(f"No JSON Schema for {type(f).__name__}; teach webapp/api/form_schema.py about it.")
    if value_range is not None:
        schema.update(value_range.schema())
    initial = f.initial
    if initial is not None and not callable(initial) and not isinstance(f, forms.ModelChoiceField):
        if isinstance(f, forms.ChoiceField) or schema["type"] == "string":
            initial = str(initial)
        if "enum" not in schema or initial in schema["enum"]:
            schema["default"] = initial
    placeholder = f.widget.attrs.get("placeholder")
    if isinstance(placeholder, str) and placeholder and schema["type"] == "string":
        schema["examples"] = [placeholder]  # the page's example input (stages, match rows, an ensemble)
    text = str(f.help_text or f.label or "")
    if text:
        schema["description"] = text
    return schema


def api_fills(f: forms.Field) -> bool:
    """Whether the API fills in a missing input from the form's initial value (views._with_defaults)."""
    return f.initial is not None and not callable(f.initial)


def form_schema(fields: Mapping[str, forms.Field], spec: FormSpec = FormSpec()) -> dict[str, Any]:
    """An object schema of the inputs `fields` accept: one property per field, unknown names refused."""
    names = spec.only or tuple(fields)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name in names:
        f = fields[name]
        schema = field_schema(f, choices=spec.choices.get(name), value_range=spec.ranges.get(name))
        must = name in spec.required or (f.required and not api_fills(f) and name not in spec.optional)
        if must:
            required.append(name)
            if schema["type"] == "string" and "format" not in schema:  # blank is missing
                schema.setdefault("minLength", 1)
        elif spec.nullable:
            schema["type"] = [schema["type"], "null"]
            if "enum" in schema:
                schema["enum"] = [*schema["enum"], None]
        properties[name] = schema
    return {"type": "object", "required": required, "properties": properties, "additionalProperties": False}
