"""Turn pydantic validation errors into located input errors that read well.

Each error gets the file, line and field path of the value, the value itself
(a summary in place of a long mapping or list), what is allowed and what to
do. An unknown field is matched against the fields the model defines, so a
misspelt ``nominalQuta`` is reported once, with "Did you mean nominalQuota?",
and not also as a missing ``nominalQuota``.
"""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from gpuplane.model.errors import InputError, Location, ManifestError
from gpuplane.model.quantity import QuantityError
from gpuplane.model.yamlio import Document, FieldPath, format_path

__all__ = ["MAX_VALUE_CHARS", "ValueSummary", "errors_from_validation"]

MAX_VALUE_CHARS = 200
"""Maximum length of the repr of a mapping or list printed as a value; a longer one is summarised."""

# Fix lines by pydantic error type, for errors whose message does not say what to write instead.
_TYPE_HINTS = {
    "int_type": "Write a whole number, such as 8.",
    "int_parsing": "Write a whole number, such as 8.",
    "int_from_float": "Write a whole number, such as 8.",
    "float_type": "Write a number, such as 0.5.",
    "float_parsing": "Write a number, such as 0.5.",
    "bool_type": "Write true or false.",
    "bool_parsing": "Write true or false.",
    "string_type": "Write a string. Quote values that YAML reads as something else, such as on, yes or 1.0.",
    "dict_type": "Write a mapping of `key: value` lines.",
    "list_type": "Write a list, one `- item` line per entry.",
    "literal_error": "Use one of the allowed values.",
    "enum": "Use one of the allowed values.",
    "too_short": "Add at least the number of entries the message names.",
    "too_long": "Remove entries down to the number the message names.",
}


class ValueSummary(str):
    """A short description printed in place of a long value: ``<list of 12 items>``."""

    def __repr__(self) -> str:
        return f"<{self}>"


def errors_from_validation(error: ValidationError, document: Document | None, path: FieldPath, *, kind: str,
                           error_type: type[InputError] = ManifestError,
                           model: type[BaseModel] | None = None) -> list[InputError]:
    """Turn pydantic's errors into located input errors.

    ``path`` is where the validated data sits in ``document``. ``model`` is the
    class that was validated; with it, an unknown field gets the closest field
    the model defines as a suggestion.
    """
    details = [(tuple(part for part in detail["loc"] if not _is_union_tag(part)), detail)
               for detail in error.errors(include_url=False)]
    suggestions = {loc: _suggest_field(model, loc) for loc, detail in details if detail["type"] == "extra_forbidden"}
    renamed = {(*loc[:-1], guess) for loc, guess in suggestions.items() if guess is not None}
    found: list[InputError] = []
    for loc, detail in details:
        if detail["type"] == "missing" and loc in renamed:
            continue  # the misspelt field's error already names this field
        location = _locate(document, path + loc)
        found.append(_error(detail, loc, location, kind, error_type, model, suggestions.get(loc)))
    return found


def _locate(document: Document | None, field_path: FieldPath) -> Location:
    if document is None:
        return Location(field=format_path(field_path))
    location = document.locate(field_path)
    # The field path is the one pydantic reports, even where the file stops short of it (a missing field).
    return Location(source=location.source, line=location.line, column=location.column,
                    field=format_path(field_path))


def _error(detail: ErrorDetails, loc: FieldPath, location: Location, kind: str, error_type: type[InputError],
           model: type[BaseModel] | None, suggestion: str | None) -> InputError:
    fields: dict[str, Any] = {"location": location, "problem": f"Invalid {kind}: {_message(detail)}."}
    expected = (detail.get("ctx") or {}).get("expected")
    if expected:
        fields["allowed"] = str(expected)
    if detail["type"] == "missing":
        fields["problem"] = f"Invalid {kind}: the required field is missing."
        fields["hint"] = f"Add {loc[-1]}." if loc else None
    elif detail["type"] == "extra_forbidden":
        fields["problem"] = f"Invalid {kind}: unknown field {loc[-1] if loc else ''}."
        known = _fields_at(model, loc[:-1]) if model is not None else None
        if known:
            fields["allowed"] = ", ".join(known)
        fields["hint"] = (f"Did you mean {suggestion}? Rename the field." if suggestion is not None
                          else "Remove the field, or rename it to one of the allowed fields.")
    elif _is_quantity_error(detail):
        fields["hint"] = "Write a Kubernetes quantity, such as 8, 500m, 16Gi or 1e3."
    else:
        fields["hint"] = _TYPE_HINTS.get(detail["type"]) or _bound_hint(detail)
    if detail["type"] != "missing":
        fields["value"] = _short_value(detail.get("input"))
    return error_type(**fields)


_BOUNDS = {"greater_than_equal": ("ge", "of at least"), "greater_than": ("gt", "above"),
           "less_than_equal": ("le", "of at most"), "less_than": ("lt", "below")}


def _bound_hint(detail: ErrorDetails) -> str | None:
    if detail["type"] not in _BOUNDS:
        return None
    key, words = _BOUNDS[detail["type"]]
    return f"Use a value {words} {(detail.get('ctx') or {}).get(key)}."


def _is_quantity_error(detail: ErrorDetails) -> bool:
    error = (detail.get("ctx") or {}).get("error")
    return isinstance(error, QuantityError) or isinstance(getattr(error, "__cause__", None), QuantityError)


def _message(detail: ErrorDetails) -> str:
    message = detail["msg"]
    return message.removeprefix("Value error, ")


def _short_value(value: Any) -> Any:
    """Return ``value``, or a summary when it is a mapping or list too long to read in one line."""
    if not isinstance(value, dict | list) or len(repr(value)) <= MAX_VALUE_CHARS:
        return value
    if isinstance(value, list):
        return ValueSummary(f"list of {len(value)} item{'' if len(value) == 1 else 's'}")
    keys = [str(key) for key in value]
    shown = ", ".join(keys[:5]) + (", ..." if len(keys) > 5 else "")
    return ValueSummary(f"mapping with {len(keys)} key{'' if len(keys) == 1 else 's'}: {shown}")


def _is_union_tag(part: object) -> bool:
    return isinstance(part, str) and ("[" in part or part.startswith("function-"))


def _suggest_field(model: type[BaseModel] | None, loc: FieldPath) -> str | None:
    if model is None or not loc:
        return None
    known = _fields_at(model, loc[:-1])
    if not known:
        return None
    matches = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.7)
    return matches[0] if matches else None


def _fields_at(model: type[BaseModel] | None, loc: FieldPath) -> list[str] | None:
    """Return the field names (as written in YAML) of the model found at ``loc`` under ``model``, if any."""
    current: Any = model
    for part in loc:
        current = _step(_unwrap(current), part)
        if current is None:
            return None
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [info.alias or name for name, info in current.model_fields.items()]
    return None


def _step(annotation: Any, part: str | int) -> Any:
    """Return the type one level below ``annotation`` at ``part`` (a field, key or index), or None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for name, info in annotation.model_fields.items():
            if part in (name, info.alias):
                return info.annotation
        return None
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is dict and len(args) == 2:
        return args[1]
    if origin in (list, tuple, set, frozenset) and args and isinstance(part, int):
        return args[0]
    return None


def _unwrap(annotation: Any) -> Any:
    """Strip ``Annotated`` and ``X | None``; of a union of several types, keep the first model or container."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        options = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        for option in options:
            unwrapped = _unwrap(option)
            if (isinstance(unwrapped, type) and issubclass(unwrapped, BaseModel)) or typing.get_origin(unwrapped):
                return unwrapped
        return options[0] if options else annotation
    return annotation
