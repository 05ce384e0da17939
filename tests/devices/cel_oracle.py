"""A second CEL evaluator for DRA selectors, built on cel-python, used only by tests.

cel-python lets any Python object flow through an expression, so Quantity and
Semver values are real objects here (``==`` by value, ``<`` undefined), and a
map subclass gives the empty-map default for an unknown domain. Both model
Kubernetes more directly than the production adapter's rewriting does, which
is what makes the agreement between them worth checking.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import celpy
from celpy import celtypes

from gpuplane.decisions.devices.cel import DeviceData
from gpuplane.model.quantity import parse_quantity

_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$"
)


class OracleError(Exception):
    """Evaluation failed in the oracle."""


class Quantity:
    def __init__(self, number: Decimal) -> None:
        self.number = number

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Quantity) and self.number == other.number

    def __hash__(self) -> int:
        return hash(self.number)


class Semver:
    def __init__(self, text: str) -> None:
        match = _SEMVER.match(text)
        if match is None:
            raise ValueError(f"invalid semver {text!r}")
        self.core = (int(match.group(1)), int(match.group(2)), int(match.group(3)))
        self.pre = match.group(4) or ""
        self.text = text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Semver) and self.text == other.text

    def __hash__(self) -> int:
        return hash(self.text)

    def key(self) -> tuple[Any, ...]:
        # Pre-release ordering is kept simple: no tag above any tag, tags compared as text.
        return (self.core, self.pre == "", self.pre)


class DomainMap(celtypes.MapType):
    """A map whose missing keys read as an empty map, while ``in`` stays exact."""

    def __getitem__(self, key: Any) -> Any:
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key)
        return celtypes.MapType()


def _compare(left: Any, right: Any) -> celtypes.IntType:
    if isinstance(left, Quantity) and isinstance(right, Quantity):
        a, b = left.number, right.number
    elif isinstance(left, Semver) and isinstance(right, Semver):
        a, b = left.key(), right.key()  # type: ignore[assignment]
    else:
        raise TypeError("no such overload")
    return celtypes.IntType((a > b) - (a < b))


def _quantity(text: Any) -> Quantity:
    return Quantity(parse_quantity(str(text)).number)


_FUNCTIONS = {
    "quantity": _quantity,
    "semver": lambda text, *normalize: Semver(str(text)),
    "compareTo": _compare,
    "isGreaterThan": lambda a, b: celtypes.BoolType(_compare(a, b) > 0),
    "isLessThan": lambda a, b: celtypes.BoolType(_compare(a, b) < 0),
    "lowerAscii": lambda text: celtypes.StringType(str(text).lower()),
    "upperAscii": lambda text: celtypes.StringType(str(text).upper()),
    "major": lambda version: celtypes.IntType(version.core[0]),
    "asInteger": lambda quantity: celtypes.IntType(int(quantity.number)),
}


def _value(attribute: Any) -> Any:
    if attribute.int_value is not None:
        return celtypes.IntType(attribute.int_value)
    if attribute.bool_value is not None:
        return celtypes.BoolType(attribute.bool_value)
    if attribute.string_value is not None:
        return celtypes.StringType(attribute.string_value)
    return Semver(attribute.version_value)


def _grouped(values: dict[str, Any], driver: str) -> DomainMap:
    grouped: dict[str, dict[Any, Any]] = {}
    for name, value in values.items():
        domain, slash, identifier = name.rpartition("/")
        if not slash:
            domain, identifier = driver, name
        grouped.setdefault(domain, {})[celtypes.StringType(identifier)] = value
    return DomainMap(
        {celtypes.StringType(domain): celtypes.MapType(inner) for domain, inner in grouped.items()}
    )


def device_activation(device: DeviceData) -> dict[str, Any]:
    attributes = {name: _value(value) for name, value in device.attributes.items()}
    capacity = {name: Quantity(value.value.number) for name, value in device.capacity.items()}
    variable = celtypes.MapType(
        {
            celtypes.StringType("driver"): celtypes.StringType(device.driver),
            celtypes.StringType("attributes"): _grouped(attributes, device.driver),
            celtypes.StringType("capacity"): _grouped(capacity, device.driver),
            celtypes.StringType("allowMultipleAllocations"): celtypes.BoolType(
                device.allow_multiple_allocations
            ),
        }
    )
    return {"device": variable}


def _without_bind(expression: str) -> str:
    """cel-python has no ``cel.bind``; the only form the tests use becomes a map."""
    match = re.fullmatch(r"cel\.bind\((\w+),\s*(.+?),\s*(.+)\)", expression.strip(), re.DOTALL)
    if match is None:
        return expression
    name, init, body = match.groups()
    return f"[{init}].map({name}, {body})[0]"


_ENVIRONMENT = celpy.Environment()


def evaluate(expression: str, device: DeviceData) -> bool:
    """Evaluate a selector; raise :class:`OracleError` when Kubernetes would report an error."""
    try:
        program = _ENVIRONMENT.program(
            _ENVIRONMENT.compile(_without_bind(expression)), functions=_FUNCTIONS
        )
        result = program.evaluate(device_activation(device))
    except Exception as error:  # cel-python raises assorted types for evaluation errors
        raise OracleError(str(error)) from error
    if isinstance(result, celpy.CELEvalError) or not isinstance(result, celtypes.BoolType):
        raise OracleError(f"not a bool: {result!r}")
    return bool(result)
