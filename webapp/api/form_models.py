"""Pydantic models of a Django form's inputs, generated from the form's own field declarations.

The API validates its form-backed bodies with the web forms themselves (the same validators, so the
same messages as the pages); these models only describe those bodies in the OpenAPI document that
django-ninja generates. Each form field becomes one pydantic field: its type, bounds
(min_value/max_value and Min/MaxValueValidator), length, regex, choices, initial value (the
default the API fills in) and help text. Nothing here knows a field by name; callers pass what a
field's declaration cannot say (choices filled in at runtime, bounds checked in a validator).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from django import forms
from django.core import validators as dj
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, create_model

from webapp.api.http import MAX_ID

# A file part of a multipart body (OpenAPI's way to say "upload a file here").
Upload = Annotated[bytes, WithJsonSchema({"type": "string", "format": "binary"})]


@dataclass(frozen=True)
class Range:
    """Bounds a form checks in a validator rather than in the field's declaration."""

    low: float | None
    high: float | None
    low_exclusive: bool = False
    high_exclusive: bool = False

    def constraints(self) -> dict[str, float]:
        low_key, high_key = ("gt" if self.low_exclusive else "ge"), ("lt" if self.high_exclusive else "le")
        return {key: bound for key, bound in ((low_key, self.low), (high_key, self.high)) if bound is not None}


@dataclass(frozen=True)
class FormSpec:
    """What a form's declaration cannot say about its API inputs.

    `only`: the inputs the endpoint accepts (default: every field). `ranges`: bounds checked in a
    validator. `choices`: choices filled in when the form is built. `required` / `optional`:
    overrides of the endpoint (an input the view demands, or one it fills in). `nullable`: JSON
    bodies may send null for an optional input (the view then drops it). `notes`: text added to an
    input's description.
    """

    only: tuple[str, ...] = ()
    ranges: Mapping[str, Range] = field(default_factory=dict)
    choices: Mapping[str, Iterable[tuple[Any, Any]]] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    nullable: bool = True
    notes: Mapping[str, str] = field(default_factory=dict)


def _choice_values(choices: Iterable[tuple[Any, Any]]) -> list[str]:
    values: list[str] = []
    for key, label in choices:
        if isinstance(label, (list, tuple)):  # an optgroup: (group label, [(key, label), ...])
            values += _choice_values(label)
        elif key not in ("", None):
            values.append(str(key))
    return values


def _constraints(f: forms.Field) -> dict[str, Any]:
    """pydantic Field arguments for the validators a Django field declares."""
    out: dict[str, Any] = {}
    for v in f.validators:
        if isinstance(v, dj.MinValueValidator):
            out["ge"] = max(out.get("ge", v.limit_value), v.limit_value)
        elif isinstance(v, dj.MaxValueValidator):
            out["le"] = min(out.get("le", v.limit_value), v.limit_value)
        elif isinstance(v, dj.MaxLengthValidator):
            out["max_length"] = v.limit_value
        elif isinstance(v, dj.RegexValidator) and not v.inverse_match and v.regex.pattern.isascii():
            # Documented only (these models never validate); Python's \Z is ECMA-262's $.
            out.setdefault("json_schema_extra", {})["pattern"] = v.regex.pattern.replace("\\Z", "$")
    return out


def _value_type(f: forms.Field, choices: Iterable[tuple[Any, Any]] | None) -> tuple[Any, dict[str, Any]]:
    """(Python type, pydantic Field arguments) of one form field's value, as the API accepts it."""
    if isinstance(f, forms.ModelChoiceField):
        return int, {"ge": 1, "le": MAX_ID}
    if isinstance(f, forms.ChoiceField):
        values = _choice_values(choices if choices is not None else f.choices)
        return Literal[tuple(values)], {}
    if isinstance(f, forms.BooleanField):
        return bool, {}
    if isinstance(f, forms.FloatField):  # before IntegerField, its base class
        return float, _constraints(f)
    if isinstance(f, forms.IntegerField) and not isinstance(f, forms.DecimalField):
        return int, _constraints(f)
    if isinstance(f, forms.FileField):
        return Upload, {}
    if isinstance(f, forms.CharField):
        return str, {**_constraints(f), **({"min_length": 1} if f.required else {})}
    # A field type this generator does not know yet: say so rather than guess.
    raise TypeError(f"No API type for {type(f).__name__}; teach webapp/api/form_models.py about it.")


def api_fills(f: forms.Field) -> bool:
    """Whether the API fills in a missing input from the form's initial value (views.with_defaults)."""
    return f.initial is not None and not callable(f.initial)


def _default(f: forms.Field, kind: Any) -> Any:
    if not api_fills(f) or isinstance(f, forms.ModelChoiceField):
        return None
    initial = str(f.initial) if isinstance(f, forms.ChoiceField) or kind is str else f.initial
    choices = getattr(kind, "__args__", None)
    return None if choices is not None and initial not in choices else initial


def field_definition(f: forms.Field, *, must: bool, nullable: bool, choices: Iterable[tuple[Any, Any]] | None = None,
                     value_range: Range | None = None, note: str = "") -> tuple[Any, Any]:
    """(annotation, FieldInfo) of one form field for pydantic.create_model."""
    kind, constraints = _value_type(f, choices)
    if value_range is not None:
        constraints.update(value_range.constraints())
    if must and kind is str:
        constraints.setdefault("min_length", 1)  # blank is missing
    annotated = Annotated[kind, Field(**constraints)]  # a documented pattern sits beside the type it constrains
    extra = {}
    placeholder = f.widget.attrs.get("placeholder")
    if isinstance(placeholder, str) and placeholder and kind is str:
        extra["examples"] = [placeholder]  # the page's example input (stages, match rows, an ensemble)
    description = " ".join(t for t in (str(f.help_text or f.label or ""), note) if t) or None
    if must:
        return annotated, Field(..., description=description, json_schema_extra=extra or None)
    annotation = annotated | None if nullable else annotated
    return annotation, Field(_default(f, kind), description=description, json_schema_extra=extra or None)


def form_model(name: str, fields: Mapping[str, forms.Field], spec: FormSpec = FormSpec(), doc: str = "",
               base: type[BaseModel] | None = None) -> type[BaseModel]:
    """A closed model of the inputs `fields` accept: one property per field, unknown names refused.

    `base`: a model with the endpoint's inputs that are not form fields (it must be closed itself).
    """
    definitions = {}
    for field_name in spec.only or tuple(fields):
        f = fields[field_name]
        must = field_name in spec.required or (f.required and not api_fills(f) and field_name not in spec.optional)
        definitions[field_name] = field_definition(
            f, must=must, nullable=spec.nullable, choices=spec.choices.get(field_name),
            value_range=spec.ranges.get(field_name), note=spec.notes.get(field_name, ""))
    if base is not None:
        return create_model(name, __base__=base, __doc__=doc or None, **definitions)
    return create_model(name, __config__=ConfigDict(extra="forbid", title=name), __doc__=doc or None, **definitions)
