"""Kubernetes quantities parse as apimachinery parses them, and round up the same way."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gpuplane.model.quantity import QuantityError, format_amount, parse_quantity, resource_amount


@pytest.mark.parametrize(("text", "expected"), [
    ("1", Decimal(1)),
    ("500m", Decimal("0.5")),
    ("1.5", Decimal("1.5")),
    (".5", Decimal("0.5")),
    ("2.", Decimal(2)),
    ("16Gi", Decimal(16 * 2**30)),
    ("1Ki", Decimal(1024)),
    ("1k", Decimal(1000)),
    ("1M", Decimal(10**6)),
    ("1e3", Decimal(1000)),
    ("1E-2", Decimal("0.01")),
    ("1E", Decimal(10**18)),
    ("+3", Decimal(3)),
    ("-3", Decimal(-3)),
    ("100u", Decimal("0.0001")),
])
def test_parse_quantity_values(text: str, expected: Decimal) -> None:
    assert parse_quantity(text).number == expected


@pytest.mark.parametrize("text", ["", "Gi", "1x", "1.2.3", "1 Gi", "1ki", "1e", "one"])
def test_parse_quantity_rejects(text: str) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(text)


def test_yaml_numbers_are_quantities() -> None:
    assert parse_quantity(8).number == 8
    assert parse_quantity(0.5).number == Decimal("0.5")


def test_booleans_are_not_quantities() -> None:
    with pytest.raises(QuantityError):
        parse_quantity(True)


@pytest.mark.parametrize(("resource", "value", "amount"), [
    ("cpu", "500m", 500),
    ("cpu", "0.0001", 1),
    ("cpu", 2, 2000),
    ("memory", "1.5Ki", 1536),
    ("memory", "0.5", 1),
    ("nvidia.com/gpu", "8", 8),
])
def test_resource_amount_rounds_up(resource: str, value: object, amount: int) -> None:
    assert resource_amount(resource, value) == amount


@pytest.mark.parametrize(("resource", "amount", "text"), [
    ("cpu", 1500, "1500m"),
    ("cpu", 2000, "2"),
    ("memory", 16 * 2**30, "16Gi"),
    ("nvidia.com/gpu", 8, "8"),
])
def test_format_amount(resource: str, amount: int, text: str) -> None:
    assert format_amount(resource, amount) == text
