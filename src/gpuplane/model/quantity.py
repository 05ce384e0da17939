"""Kubernetes resource quantities, parsed exactly as ``k8s.io/apimachinery`` does.

Grammar (from ``resource.Quantity``)::

    quantity ::= signedNumber suffix
    suffix   ::= binarySI | decimalExponent | decimalSI
    binarySI ::= Ki | Mi | Gi | Ti | Pi | Ei
    decimalSI ::= n | u | m | "" | k | M | G | T | P | E
    decimalExponent ::= ("e" | "E") signedInteger
    number   ::= digits | digits "." digits | digits "." | "." digits

Scheduling code works on integers. :func:`resource_amount` converts a quantity
to the integer Kueue and the kube-scheduler use: milli-units for ``cpu``
(``MilliValue``) and whole units for everything else (``Value``), both rounded
up as Kubernetes rounds them.
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from functools import lru_cache
from typing import Final

__all__ = [
    "Quantity",
    "QuantityError",
    "format_amount",
    "parse_quantity",
    "resource_amount",
]

_BINARY: Final = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
_DECIMAL: Final = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
_NUMBER = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(.*)$")
_EXPONENT = re.compile(r"^[eE]([+-]?[0-9]+)$")

ALLOWED_FORMS: Final = (
    "a number with an optional suffix: binary (Ki, Mi, Gi, Ti, Pi, Ei), decimal "
    "(n, u, m, k, M, G, T, P, E) or an exponent (e3, E-2); for example 8, 500m, 16Gi, 1e3"
)


class QuantityError(ValueError):
    """A string that is not a Kubernetes quantity."""


class Quantity:
    """An exact Kubernetes quantity: a decimal number of base units."""

    __slots__ = ("_text", "number")

    def __init__(self, number: Decimal, text: str | None = None) -> None:
        self.number = number
        self._text = text

    def __repr__(self) -> str:
        return f"Quantity({str(self)!r})"

    def __str__(self) -> str:
        if self._text is not None:
            return self._text
        return _format_decimal(self.number)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Quantity):
            return self.number == other.number
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.number)

    def __lt__(self, other: Quantity) -> bool:
        return self.number < other.number

    def __le__(self, other: Quantity) -> bool:
        return self.number <= other.number

    def value(self) -> int:
        """Return the quantity in whole units, rounded up (``Quantity.Value``)."""
        return int(self.number.to_integral_value(rounding=ROUND_CEILING))

    def milli_value(self) -> int:
        """Return the quantity in thousandths of a unit, rounded up (``Quantity.MilliValue``)."""
        return int((self.number * 1000).to_integral_value(rounding=ROUND_CEILING))


def _format_decimal(number: Decimal) -> str:
    if number == number.to_integral_value():
        return str(int(number))
    return format(number.normalize(), "f")


@lru_cache(maxsize=4096)
def _parse_text(text: str) -> Quantity:
    match = _NUMBER.match(text)
    if match is None:
        raise QuantityError(f"{text!r} is not a Kubernetes quantity")
    digits, suffix = match.groups()
    try:
        number = Decimal(digits)
    except InvalidOperation as error:  # pragma: no cover - the regex admits only decimals
        raise QuantityError(f"{text!r} is not a Kubernetes quantity") from error
    if suffix in _BINARY:
        return Quantity(number * _BINARY[suffix], text)
    if suffix in _DECIMAL:
        return Quantity(number * _DECIMAL[suffix], text)
    exponent = _EXPONENT.match(suffix)
    if exponent is not None:
        return Quantity(number.scaleb(int(exponent.group(1))), text)
    raise QuantityError(f"{text!r} has an unknown suffix {suffix!r}")


def parse_quantity(raw: object) -> Quantity:
    """Parse a quantity from YAML: a string such as ``"16Gi"`` or a plain number.

    Raises :class:`QuantityError` for anything else; the message names the value.
    """
    if isinstance(raw, Quantity):
        return raw
    if isinstance(raw, bool):
        raise QuantityError(f"{raw!r} is a boolean, not a quantity")
    if isinstance(raw, int):
        return Quantity(Decimal(raw))
    if isinstance(raw, float):
        if not math.isfinite(raw):
            raise QuantityError(f"{raw!r} is not a finite quantity")
        return Quantity(Decimal(repr(raw)))
    if isinstance(raw, str):
        return _parse_text(raw.strip())
    raise QuantityError(f"{raw!r} is a {type(raw).__name__}, not a quantity")


def resource_amount(resource: str, raw: object) -> int:
    """Return the integer Kueue charges for ``raw`` of ``resource``.

    ``cpu`` is counted in millicores and every other resource in whole units,
    both rounded up, as ``resources.ResourceValue`` in Kueue does.
    """
    quantity = parse_quantity(raw)
    if resource == "cpu":
        return quantity.milli_value()
    return quantity.value()


def format_amount(resource: str, amount: int) -> str:
    """Format an integer amount of ``resource`` (see :func:`resource_amount`) for people."""
    if resource == "cpu":
        if amount % 1000 == 0:
            return str(amount // 1000)
        return f"{amount}m"
    if resource in {"memory", "ephemeral-storage"} or resource.startswith("hugepages-"):
        for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
            unit = _BINARY[suffix]
            if amount and amount % unit == 0:
                return f"{amount // unit}{suffix}"
    return str(amount)
