"""Kubernetes' CEL library functions for DRA selectors, as Python callbacks.

Quantity and Semver values travel through the Rust evaluator as one-key maps
holding a canonical string (``{"__quantity__": "1073741824"}``), because it
has no opaque custom types. A function called with the wrong types raises
``TypeError`` and a bad literal raises ``ValueError``; :class:`Library` turns
both into a quiet evaluation failure whose message it keeps.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final

from gpuplane.model.quantity import Quantity, QuantityError, parse_quantity

__all__ = ["QUANTITY_KEY", "SEMVER_KEY", "Failure", "Library", "quantity_value", "type_name"]

QUANTITY_KEY: Final = "__quantity__"
SEMVER_KEY: Final = "__semver__"
_INT64_MAX: Final = 2**63 - 1
_INT64_MIN: Final = -(2**63)


def quantity_value(quantity: Quantity) -> dict[str, str]:
    """Return the CEL value of a quantity."""
    return {QUANTITY_KEY: _canonical(quantity.number)}


def _canonical(number: Decimal) -> str:
    if number == number.to_integral_value():
        return str(int(number))
    return format(number.normalize(), "f")




class Failure:
    """Marker a library function returns to make evaluation fail without a logged warning.

    The evaluator logs a warning for every exception a Python function raises.
    A value it cannot convert fails the evaluation quietly, and the library
    keeps the message aside.
    """


class Library:
    """Kubernetes' quantity, semver, regex, list and string functions for one engine."""

    def __init__(self) -> None:
        self.last_error: str | None = None
        self.functions: dict[str, Callable[..., Any]] = self._table()

    def _guard(self, function: Callable[..., Any]) -> Callable[..., Any]:
        def guarded(*args: Any) -> Any:
            try:
                return function(*args)
            except (ValueError, TypeError, IndexError, re.error) as error:
                self.last_error = str(error)
                return Failure()
        return guarded

    def _table(self) -> dict[str, Callable[..., Any]]:
        from cel import stdlib

        plain: dict[str, Callable[..., Any]] = {
            "quantity": _quantity, "isQuantity": _is_quantity,
            "semver": _semver, "isSemver": _is_semver,
            "compareTo": _compare_to, "isGreaterThan": _is_greater_than,
            "isLessThan": _is_less_than,
            "add": _add, "sub": _sub, "asInteger": _as_integer, "isInteger": _is_integer,
            "asApproximateFloat": _as_approximate_float, "sign": _sign,
            "major": _major, "minor": _minor, "patch": _patch,
            "find": _find, "findAll": _find_all, "isSorted": _is_sorted,
            "sum": _sum, "min": _min, "max": _max,
            "indexOf": _index_of(stdlib.index_of),
            "lastIndexOf": _last_index_of(stdlib.last_index_of),
            "charAt": stdlib.char_at, "substring": stdlib.substring, "replace": stdlib.replace,
            "split": stdlib.split, "join": stdlib.join, "lowerAscii": stdlib.lower_ascii,
            "upperAscii": stdlib.upper_ascii, "trim": stdlib.trim,
        }
        return {name: self._guard(function) for name, function in plain.items()}


def _quantity_of(value: Any) -> Quantity:
    if isinstance(value, dict) and QUANTITY_KEY in value:
        return parse_quantity(value[QUANTITY_KEY])
    raise TypeError(f"no such overload: expected a quantity, got {type_name(value)}")


def type_name(value: Any) -> str:
    """Name a CEL value's type the way error messages should."""
    if isinstance(value, dict) and QUANTITY_KEY in value:
        return "Quantity"
    if isinstance(value, dict) and SEMVER_KEY in value:
        return "Semver"
    return type(value).__name__


def _quantity(text: Any) -> dict[str, str]:
    if not isinstance(text, str):
        raise TypeError(f"no such overload: quantity({type_name(text)})")
    try:
        return quantity_value(parse_quantity(text))
    except QuantityError as error:
        raise ValueError(f"quantities must match the regular expression "
                         f"'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': {error}") from None


def _is_quantity(text: Any) -> bool:
    try:
        _quantity(text)
    except (TypeError, ValueError):
        return False
    return True


_SEMVER_PATTERN = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)


def _normalize_semver(text: str) -> str:
    """Apply ``semver(s, true)``: drop a leading v, pad minor and patch, strip leading zeros."""
    core, rest = re.match(r"^([0-9.]*)(.*)$", text.removeprefix("v"), re.DOTALL).groups()  # type: ignore[union-attr]
    parts = core.split(".")
    if not 1 <= len(parts) <= 3 or not all(part.isdigit() for part in parts):
        return text
    parts = [str(int(part)) for part in parts] + ["0"] * (3 - len(parts))
    return ".".join(parts) + rest


def _semver(text: Any, normalize: Any = False) -> dict[str, str]:
    if not isinstance(text, str):
        raise TypeError(f"no such overload: semver({type_name(text)})")
    candidate = _normalize_semver(text) if normalize is True else text
    if not _SEMVER_PATTERN.match(candidate):
        raise ValueError(f"invalid semver: {text}")
    return {SEMVER_KEY: candidate}


def _is_semver(text: Any, normalize: Any = False) -> bool:
    try:
        _semver(text, normalize)
    except (TypeError, ValueError):
        return False
    return True


def _semver_parts(value: Any) -> tuple[tuple[int, int, int], str]:
    if not (isinstance(value, dict) and SEMVER_KEY in value):
        raise TypeError(f"no such overload: expected a semver, got {type_name(value)}")
    match = _SEMVER_PATTERN.match(value[SEMVER_KEY])
    if match is None:
        raise ValueError(f"invalid semver: {value[SEMVER_KEY]}")
    return (int(match.group(1)), int(match.group(2)), int(match.group(3))), match.group(4) or ""


def _compare_prerelease(left: str, right: str) -> int:
    """Order pre-release tags as semver 2.0.0 does; a version without a tag ranks higher."""
    if left == right:
        return 0
    if not left or not right:
        return 1 if not left else -1
    left_parts, right_parts = left.split("."), right.split(".")
    for a, b in zip(left_parts, right_parts, strict=False):
        if a == b:
            continue
        if a.isdigit() and b.isdigit():
            return 1 if int(a) > int(b) else -1
        if a.isdigit() != b.isdigit():
            return -1 if a.isdigit() else 1
        return 1 if a > b else -1
    return (len(left_parts) > len(right_parts)) - (len(left_parts) < len(right_parts))


def _compare_to(left: Any, right: Any) -> int:
    if isinstance(left, dict) and SEMVER_KEY in left:
        (core_left, pre_left), (core_right, pre_right) = _semver_parts(left), _semver_parts(right)
        if core_left != core_right:
            return 1 if core_left > core_right else -1
        return _compare_prerelease(pre_left, pre_right)
    a, b = _quantity_of(left).number, _quantity_of(right).number
    return (a > b) - (a < b)


def _is_greater_than(left: Any, right: Any) -> bool:
    return _compare_to(left, right) > 0


def _is_less_than(left: Any, right: Any) -> bool:
    return _compare_to(left, right) < 0


def _operand(value: Any) -> Decimal:
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    return _quantity_of(value).number


def _add(left: Any, right: Any) -> dict[str, str]:
    return {QUANTITY_KEY: _canonical(_quantity_of(left).number + _operand(right))}


def _sub(left: Any, right: Any) -> dict[str, str]:
    return {QUANTITY_KEY: _canonical(_quantity_of(left).number - _operand(right))}


def _as_integer(value: Any) -> int:
    number = _quantity_of(value).number
    if number != number.to_integral_value() or not _INT64_MIN <= number <= _INT64_MAX:
        raise ValueError("cannot convert value to integer: not an integer or out of int64 range")
    return int(number)


def _is_integer(value: Any) -> bool:
    number = _quantity_of(value).number
    return number == number.to_integral_value() and _INT64_MIN <= number <= _INT64_MAX


def _as_approximate_float(value: Any) -> float:
    return float(_quantity_of(value).number)


def _sign(value: Any) -> int:
    number = _quantity_of(value).number
    return (number > 0) - (number < 0)


def _major(value: Any) -> int:
    return _semver_parts(value)[0][0]


def _minor(value: Any) -> int:
    return _semver_parts(value)[0][1]


def _patch(value: Any) -> int:
    return _semver_parts(value)[0][2]


def _find(text: Any, pattern: Any) -> str:
    match = re.search(pattern, text)
    return match.group(0) if match else ""


def _find_all(text: Any, pattern: Any, limit: Any = -1) -> list[str]:
    found = [match.group(0) for match in re.finditer(pattern, text)]
    return found if limit < 0 else found[:limit]


def _is_sorted(items: Any) -> bool:
    return all(items[i] <= items[i + 1] for i in range(len(items) - 1))


def _sum(items: Any) -> Any:
    return sum(items) if items else 0


def _min(items: Any) -> Any:
    if not items:
        raise ValueError("min called on an empty list")
    return min(items)


def _max(items: Any) -> Any:
    if not items:
        raise ValueError("max called on an empty list")
    return max(items)


def _index_of(for_strings: Callable[..., int]) -> Callable[..., int]:
    def index_of(target: Any, *args: Any) -> int:
        if isinstance(target, list):
            return target.index(args[0]) if args[0] in target else -1
        return for_strings(target, *args)
    return index_of


def _last_index_of(for_strings: Callable[..., int]) -> Callable[..., int]:
    def last_index_of(target: Any, *args: Any) -> int:
        if isinstance(target, list):
            matches = [i for i, item in enumerate(target) if item == args[0]]
            return matches[-1] if matches else -1
        return for_strings(target, *args)
    return last_index_of
