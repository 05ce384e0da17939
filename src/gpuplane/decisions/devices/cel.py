"""CEL device selectors, evaluated as Kubernetes 1.35's DRA environment evaluates them.

A selector reads one variable, ``device``, with

- ``device.driver``: the slice's driver name;
- ``device.attributes[domain][id]``: attribute values grouped by domain, where a
  name without ``/`` belongs to the driver's domain; versions are semver objects;
- ``device.capacity[domain][id]``: capacity values as quantity objects;
- ``device.allowMultipleAllocations``: only declared with consumable capacity on.

Looking up a domain the device lacks yields an empty map, while looking up an id
the domain lacks is a runtime error (``no such key``). Runtime errors abort the
scheduling attempt instead of counting as "no match", so they are raised here as
:class:`CelRuntimeError` and never folded into ``False``.

The evaluator is the ``common-expression-language`` package (the Rust ``cel``
crate). NOTE: it has no opaque custom types and no default-valued maps, so two
choices stand in for them. Quantity and Semver values travel as one-key maps
holding a canonical string, so ``==`` compares by value and ``<`` has no
overload, as in Kubernetes. The empty-map default for an unknown domain comes
from rewriting each ``device.attributes[...]`` lookup (see ``cel_rewrite``),
which a lookup through a bound variable escapes.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import cel

from gpuplane.decisions.devices.cel_library import (
    QUANTITY_KEY,
    SEMVER_KEY,
    Library,
    quantity_value,
)
from gpuplane.decisions.devices.cel_rewrite import (
    DevicePath,
    bound_variables,
    device_paths,
    literal_iterations,
    rewrite_expression,
    selects_field,
)
from gpuplane.model.objects.resource import DeviceAttribute, DeviceCapacity

__all__ = [
    "CelCompileError",
    "CelError",
    "CelRuntimeError",
    "DeviceData",
    "SelectorEngine",
    "device_variable",
    "group_by_domain",
]



class CelError(Exception):
    """A selector that cannot be compiled or evaluated; Kubernetes aborts the attempt on it."""

    def __init__(self, expression: str, message: str) -> None:
        super().__init__(message)
        self.expression = expression
        self.message = message


class CelCompileError(CelError):
    """The expression is not valid CEL, or uses syntax the evaluator does not support."""


class CelRuntimeError(CelError):
    """Evaluation failed for one device: a missing key, a bad literal, a type mismatch."""


@dataclass(frozen=True, slots=True)
class DeviceData:
    """The parts of one device a selector reads, plus a key that identifies the device for caching.

    ``key`` must change whenever the content changes. The allocator uses
    driver, pool, pool generation and device name, because a driver bumps the
    generation on every change to a pool.
    """

    key: Hashable
    driver: str
    attributes: Mapping[str, DeviceAttribute]
    capacity: Mapping[str, DeviceCapacity]
    allow_multiple_allocations: bool = False


# --- value conversion ---------------------------------------------------------------------------


def group_by_domain(names: Mapping[str, Any], driver: str) -> dict[str, dict[str, Any]]:
    """Group qualified names by domain; a name without a domain belongs to ``driver``."""
    grouped: dict[str, dict[str, Any]] = {}
    for name, value in names.items():
        domain, slash, identifier = name.rpartition("/")
        if not slash:
            domain, identifier = driver, name
        grouped.setdefault(domain, {})[identifier] = value
    return grouped


def _attribute_value(name: str, attribute: DeviceAttribute) -> Any:
    if attribute.version_value is not None:
        return {SEMVER_KEY: attribute.version_value}
    if attribute.value is None:
        raise ValueError(f"attribute {name}: unsupported attribute value")
    return attribute.value


def device_variable(device: DeviceData, *, consumable_capacity: bool) -> dict[str, Any]:
    """Build the plain value of the ``device`` variable.

    Raises ``ValueError`` for an attribute without a value, which Kubernetes
    reports as a runtime error of whichever selector meets the device first.
    """
    attributes = {name: _attribute_value(name, value) for name, value in device.attributes.items()}
    capacity = {name: quantity_value(value.value) for name, value in device.capacity.items()}
    variable: dict[str, Any] = {
        "driver": device.driver,
        "attributes": group_by_domain(attributes, device.driver),
        "capacity": group_by_domain(capacity, device.driver),
    }
    if consumable_capacity:
        variable["allowMultipleAllocations"] = device.allow_multiple_allocations
    return variable


# --- the engine ---------------------------------------------------------------------------------


COST_LIMIT = 1_000_000
"""Kubernetes' runtime cost limit for one selector evaluation."""


@dataclass(frozen=True, slots=True)
class _Compiled:
    program: Any
    functions: tuple[str, ...]
    paths: frozenset[DevicePath] | None
    """The parts of ``device`` the expression reads; None means the whole device."""
    runtime_error: str | None = None
    """An error every evaluation would end in, found before running the expression."""


class SelectorEngine:
    """Compile selectors once and evaluate them per device, caching every outcome.

    Outcomes are cached per (expression, device key) across calls, because
    neither changes while a device keeps its key (see :class:`DeviceData`).
    ``max_cached_results`` bounds that cache; it is cleared when full.
    """

    def __init__(self, *, consumable_capacity: bool = False,
                 max_cached_results: int = 2_000_000) -> None:
        self.consumable_capacity = consumable_capacity
        self.max_cached_results = max_cached_results
        self._library = Library()
        self._compiled: dict[str, _Compiled | CelCompileError] = {}
        self._results: dict[tuple[str, Hashable], bool | CelError] = {}
        self.evaluations = 0
        """Number of CEL evaluations that actually ran (cache misses), for benchmarks."""

    def compile(self, expression: str) -> None:
        """Compile ``expression`` into the cache; raise :class:`CelCompileError` if invalid."""
        compiled = self._compile(expression)
        if isinstance(compiled, CelCompileError):
            raise compiled

    def matches(self, expression: str, device: DeviceData) -> bool:
        """Tell whether ``device`` satisfies ``expression``.

        Raises :class:`CelCompileError` or :class:`CelRuntimeError`; an error is
        cached like a result, so the same pair fails the same way again.
        """
        key = (expression, device.key)
        outcome = self._results.get(key)
        if outcome is None:
            outcome = self._evaluate(expression, device)
            if len(self._results) >= self.max_cached_results:
                self._results.clear()
            self._results[key] = outcome
        if isinstance(outcome, CelError):
            raise outcome
        return outcome

    def _compile(self, expression: str) -> _Compiled | CelCompileError:
        cached = self._compiled.get(expression)
        if cached is not None:
            return cached
        result: _Compiled | CelCompileError
        rewritten = rewrite_expression(expression)
        try:
            program = cel.compile(rewritten)
        except (ValueError, RuntimeError) as error:
            result = CelCompileError(expression,
                                     f"compilation failed: {_compile_message(str(error))}")
        else:
            problem = self._check_references(rewritten, program.variables())
            used = tuple(sorted(set(program.functions()) & set(self._library.functions)))
            result = (_Compiled(program, used, device_paths(expression), _cost_error(expression))
                      if problem is None
                      else CelCompileError(expression, f"compilation failed: {problem}"))
        self._compiled[expression] = result
        return result

    def _check_references(self, rewritten: str, variables: list[str]) -> str | None:
        """Find references that Kubernetes' type checker rejects at compile time.

        The Rust evaluator would only fail on them when it runs the expression.
        """
        unknown = sorted(set(variables) - {"device"} - bound_variables(rewritten))
        if unknown:
            return f"undeclared reference to {unknown[0]!r}"
        if not self.consumable_capacity and selects_field(rewritten, "device",
                                                          "allowMultipleAllocations"):
            return "undefined field 'allowMultipleAllocations'"
        return None

    def _context(self, device: DeviceData, compiled: _Compiled) -> Any:
        """Build a context holding the device and the functions ``compiled`` uses.

        The evaluator spends most of an evaluation converting the device into
        CEL values, so only the parts the expression reads are handed over when
        they are known. Contexts are not kept: each (expression, device) pair
        runs once, and a kept context costs kilobytes of the evaluator's memory.
        """
        if compiled.paths is None:
            variable = device_variable(device, consumable_capacity=self.consumable_capacity)
        else:
            variable = partial_device_variable(device, compiled.paths)
        chosen = {name: self._library.functions[name] for name in compiled.functions}
        return cel.Context(variables={"device": variable}, functions=chosen)

    def _evaluate(self, expression: str, device: DeviceData) -> bool | CelError:
        compiled = self._compile(expression)
        if isinstance(compiled, CelCompileError):
            raise compiled
        if compiled.runtime_error is not None:
            return CelRuntimeError(expression, compiled.runtime_error)
        self.evaluations += 1
        self._library.last_error = None
        try:
            context = self._context(device, compiled)
        except ValueError as error:
            return CelRuntimeError(expression, str(error))
        try:
            value = compiled.program.execute(context)
        except KeyError as error:
            missing = error.args[0] if error.args else ""
            return CelRuntimeError(expression, f"no such key: {missing}")
        except (RuntimeError, TypeError, ValueError, ArithmeticError) as error:
            message = self._library.last_error or _first_line(str(error))
            return CelRuntimeError(expression, message)
        if not isinstance(value, bool):
            # Kubernetes' type checker rejects such an expression when it compiles it.
            return CelCompileError(expression, "must evaluate to bool or the unknown type, not "
                                   f"{_cel_type(value)}")
        return value


def partial_device_variable(device: DeviceData, paths: frozenset[DevicePath]) -> dict[str, Any]:
    """Build the parts of the ``device`` variable that ``paths`` read.

    Every domain the device has stays present, possibly empty, so that a
    missing id fails just as on the whole device. Like :func:`device_variable`
    it raises ``ValueError`` for any attribute without a value, read or not,
    because Kubernetes converts the whole device before evaluating.
    """
    for name, attribute in device.attributes.items():
        if attribute.value is None:
            raise ValueError(f"attribute {name}: unsupported attribute value")
    variable: dict[str, Any] = {}
    for path in paths:
        if len(path) == 1:
            variable[path[0]] = (device.driver if path[0] == "driver"
                                 else device.allow_multiple_allocations)
            continue
        field, domain, identifier = path
        source: Mapping[str, Any] = device.attributes if field == "attributes" else device.capacity
        grouped = variable.get(field)
        if grouped is None:
            grouped = variable[field] = {name: {} for name in _domains(source, device.driver)}
        if domain not in grouped:
            continue
        value = source.get(f"{domain}/{identifier}")
        if value is None and domain == device.driver:
            value = source.get(identifier)
        if value is not None:
            grouped[domain][identifier] = (_attribute_value(identifier, value)
                                           if field == "attributes"
                                           else quantity_value(value.value))
    return variable


def _domains(names: Mapping[str, Any], driver: str) -> set[str]:
    return {name.rpartition("/")[0] or driver for name in names}


def _cost_error(expression: str) -> str | None:
    """Report an expression whose loops alone exceed Kubernetes' cost limit.

    NOTE: the Rust evaluator tracks no cost, so only loops over list literals
    are counted, each iteration at the lowest cost of one. This catches
    runaway nesting before it runs, not every expression Kubernetes would stop.
    """
    if literal_iterations(expression) > COST_LIMIT:
        return "operation cancelled: actual cost limit exceeded"
    return None


def _cel_type(value: object) -> str:
    """Name the CEL type of an evaluation result."""
    if isinstance(value, dict) and QUANTITY_KEY in value:
        return "Quantity"
    if isinstance(value, dict) and SEMVER_KEY in value:
        return "Semver"
    if isinstance(value, dict):
        return "map"
    names = {int: "int", float: "double", str: "string", bytes: "bytes", list: "list",
             type(None): "null_type"}
    return names.get(type(value), type(value).__name__)


def _first_line(text: str) -> str:
    """Keep the first sentence of the evaluator's message; the rest is generic advice."""
    line = text.strip().splitlines()[0] if text.strip() else text
    head, separator, _ = line.partition(". ")
    return head + "." if separator else line


def _compile_message(text: str) -> str:
    """Keep the parser's complaint without the rewritten expression it quotes."""
    match = re.search(r"ERROR: <input>:\d+:\d+: (.*)", text)
    return match.group(1).strip() if match else _first_line(text)
