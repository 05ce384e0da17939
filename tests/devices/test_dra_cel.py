"""CEL selectors in Kubernetes' device environment, and agreement with a second evaluator."""

from __future__ import annotations

from functools import cache

import pytest
from cel_oracle import OracleError, evaluate
from test_dra_conformance import EXTRA_CASES, SHARED_CASES

from gpuplane.decisions.devices.cel import (
    CelCompileError,
    CelError,
    CelRuntimeError,
    DeviceData,
    SelectorEngine,
    partial_device_variable,
)
from gpuplane.decisions.devices.cel_rewrite import device_paths, rewrite_expression
from gpuplane.model.objects.resource import ALLOCATOR_INPUT, DeviceAttribute, DeviceCapacity
from gpuplane.surfaces.conformance.dra_cases import load_dra_cases


def gpu(key: object = "gpu-0", **attributes: object) -> DeviceData:
    typed = {
        "type": {"string": "gpu"},
        "productName": {"string": "NVIDIA H100 80GB HBM3"},
        "driverVersion": {"version": "550.127.8"},
        "resource.kubernetes.io/pcieRoot": {"string": "pci0000:00"},
        "numa": {"int": 1},
        "mig": {"bool": False},
    }
    for name, value in attributes.items():
        typed[name] = value  # type: ignore[assignment]
    return DeviceData(
        key=key,
        driver="gpu.nvidia.com",
        attributes={
            name: DeviceAttribute.model_validate(value, context=ALLOCATOR_INPUT)
            for name, value in typed.items()
        },
        capacity={"memory": DeviceCapacity.model_validate({"value": "80Gi"})},
    )


GPU = gpu()

EXPRESSIONS = [
    'device.driver == "gpu.nvidia.com" && device.attributes["gpu.nvidia.com"].type == "gpu"',
    'device.capacity["gpu.nvidia.com"].memory.compareTo(quantity("40Gi")) >= 0',
    'device.capacity["gpu.nvidia.com"].memory.compareTo(quantity("81Gi")) >= 0',
    'device.capacity["gpu.nvidia.com"].memory.isGreaterThan(quantity("79Gi"))',
    'device.capacity["gpu.nvidia.com"].memory.isLessThan(quantity("79Gi"))',
    'device.capacity["gpu.nvidia.com"].memory == quantity("81920Mi")',
    'device.attributes["gpu.nvidia.com"].driverVersion.isGreaterThan(semver("550.0.0"))',
    'device.attributes["gpu.nvidia.com"].driverVersion.compareTo(semver("551.0.0")) < 0',
    'device.attributes["gpu.nvidia.com"].driverVersion.major() == 550',
    'device.attributes["gpu.nvidia.com"].productName.lowerAscii().matches("^.*h100.*$")',
    'cel.bind(g, device.attributes["gpu.nvidia.com"], g.type == "mig" && g.profile == "1g.10gb")',
    'device.attributes["resource.kubernetes.io"].pcieRoot == "pci0000:00"',
    '"x.example.com" in device.attributes',
    'has(device.attributes["x.example.com"].model)',
    'has(device.attributes["gpu.nvidia.com"].model)',
    'device.attributes["gpu.nvidia.com"].model == "a100"',
    'device.attributes["x.example.com"].model == "a100"',
    'device.attributes["gpu.nvidia.com"].model == "a100" || true',
    'false && device.attributes["gpu.nvidia.com"].model == "a100"',
    'device.attributes["gpu.nvidia.com"].numa == 1 && !device.attributes["gpu.nvidia.com"].mig',
    'device.capacity["gpu.nvidia.com"].memory.asInteger() == 85899345920',
    'quantity("1Gi") == quantity("1024Mi")',
    'quantity("200K") == quantity("1")',
    'quantity("1Gi") < quantity("2Gi")',
]


@cache
def case_devices_and_selectors() -> tuple[list[DeviceData], list[str]]:
    """Every device and every selector of the case files."""
    devices: list[DeviceData] = []
    selectors: list[str] = []
    for path in (SHARED_CASES, EXTRA_CASES):
        if not path.exists():
            continue
        for case in load_dra_cases(path):
            for item in case.classes:
                selectors += [s.cel.expression for s in item.selectors if s.cel is not None]
            for claim in case.claims:
                for request in claim.requests:
                    for part in [request.exactly, *request.first_available]:
                        if part is not None:
                            selectors += [
                                s.cel.expression for s in part.selectors if s.cel is not None
                            ]
            for item in case.slices:
                devices += [
                    DeviceData(
                        key=(case.id, item.driver, item.pool.name, item.name, d.name),
                        driver=item.driver,
                        attributes=d.attributes,
                        capacity=d.capacity,
                        allow_multiple_allocations=bool(d.allow_multiple_allocations),
                    )
                    for d in item.devices
                ]
    return devices, sorted(set(selectors))


def outcome(function: object, expression: str, device: DeviceData) -> object:
    try:
        return function(expression, device)  # type: ignore[operator]
    except (CelError, OracleError):
        return "error"


def test_oracle_agrees_on_case_selectors() -> None:
    devices, selectors = case_devices_and_selectors()
    engine = SelectorEngine(consumable_capacity=True)
    assert selectors
    for expression in selectors:
        for device in devices:
            mine = outcome(engine.matches, expression, device)
            theirs = outcome(evaluate, expression, device)
            assert mine == theirs, f"{expression!r} on {device.key}: {mine} != {theirs}"


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_oracle_agrees_on_library(expression: str) -> None:
    engine = SelectorEngine()
    assert outcome(engine.matches, expression, GPU) == outcome(evaluate, expression, GPU)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('device.driver == "gpu.nvidia.com"', True),
        ('device.attributes["gpu.nvidia.com"].productName == "NVIDIA H100 80GB HBM3"', True),
        ('device.attributes["resource.kubernetes.io"].pcieRoot == "pci0000:40"', False),
        ('device.capacity["gpu.nvidia.com"].memory.compareTo(quantity("80Gi")) == 0', True),
        ('"gpu.nvidia.com" in device.attributes', True),
        ('"x.example.com" in device.attributes', False),
        ('has(device.attributes["x.example.com"].model)', False),
        ('size(device.attributes["x.example.com"]) == 0', True),
        ('semver("v1.2", true) == semver("1.2.0")', True),
        ('isQuantity("200K")', False),
        ('isSemver("1.2.3-rc.1")', True),
        ('quantity("1.5").add(1).compareTo(quantity("2500m")) == 0', True),
        ('quantity("3").sub(quantity("1")).asInteger() == 2', True),
        ('semver("1.0.0-rc.1").isLessThan(semver("1.0.0"))', True),
        ('cel.bind(x, device.attributes["gpu.nvidia.com"].numa, x + x == 2)', True),
        ('device.attributes["gpu.nvidia.com"].productName.split(" ")[1] == "H100"', True),
    ],
)
def test_selector_values(expression: str, expected: bool) -> None:
    assert SelectorEngine().matches(expression, GPU) is expected


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ('device.attributes["gpu.nvidia.com"].model == "a100"', "no such key: model"),
        ('quantity("200K") == quantity("1")', "quantities must match"),
        ('quantity("1Gi") < quantity("2Gi")', "No such overload"),
        ('semver("1.2") == semver("1.2.0")', "invalid semver"),
    ],
)
def test_runtime_errors(expression: str, message: str) -> None:
    with pytest.raises(CelRuntimeError, match=message):
        SelectorEngine().matches(expression, GPU)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("noSuchVariable == 1", "undeclared reference to 'noSuchVariable'"),
        ("device.driver ==", "Syntax error"),
        ('device.attributes["gpu.nvidia.com"].?model.orValue("x") == "x"', "unsupported syntax"),
        ("device.allowMultipleAllocations", "undefined field"),
        ("device.driver", "must evaluate to bool or the unknown type, not string"),
        ("1", "must evaluate to bool or the unknown type, not int"),
    ],
)
def test_compile_errors(expression: str, message: str) -> None:
    with pytest.raises(CelCompileError, match=message):
        SelectorEngine().matches(expression, GPU)


def test_multiple_allocations_visible_with_consumable_capacity() -> None:
    engine = SelectorEngine(consumable_capacity=True)
    assert engine.matches("device.allowMultipleAllocations == false", GPU)


def test_outcomes_are_cached_per_device_key() -> None:
    engine = SelectorEngine()
    expression = 'device.attributes["gpu.nvidia.com"].numa == 1'
    for _ in range(3):
        assert engine.matches(expression, GPU)
    assert engine.evaluations == 1
    assert not engine.matches(expression, gpu("gpu-1", numa={"int": 2}))
    assert engine.evaluations == 2


def test_errors_are_cached_too() -> None:
    engine = SelectorEngine()
    expression = 'device.attributes["gpu.nvidia.com"].model == "x"'
    for _ in range(2):
        with pytest.raises(CelRuntimeError):
            engine.matches(expression, GPU)
    assert engine.evaluations == 1


def test_rewrite_leaves_string_literals_alone() -> None:
    text = '"device.attributes[\\"x\\"]" == device.driver'
    assert rewrite_expression(text) == text


def test_rewrite_defaults_unknown_domains() -> None:
    rewritten = rewrite_expression('device.capacity["a.com"].memory')
    assert rewritten == '(("a.com") in device.capacity ? device.capacity["a.com"] : {}).memory'


def test_rewrite_turns_bind_into_map() -> None:
    assert rewrite_expression("cel.bind(x, 1, x + 1) == 2") == "[1].map(x, x + 1)[0] == 2"


def test_unset_attribute_is_a_runtime_error() -> None:
    device = gpu("odd", broken={})
    with pytest.raises(CelRuntimeError, match="unsupported attribute value"):
        SelectorEngine().matches('device.driver != ""', device)


def test_device_paths_lists_literal_reads() -> None:
    paths = device_paths('device.driver == "a" && device.capacity["a"]["memory"].isInteger()')
    assert paths == frozenset({("driver",), ("capacity", "a", "memory")})


def test_device_paths_gives_up_on_whole_maps() -> None:
    assert device_paths('"a" in device.attributes') is None
    assert device_paths('cel.bind(g, device.attributes["a"], g.x == 1)') is None


def test_partial_variable_keeps_every_domain() -> None:
    variable = partial_device_variable(GPU, frozenset({("attributes", "gpu.nvidia.com", "model")}))
    assert variable == {"attributes": {"gpu.nvidia.com": {}, "resource.kubernetes.io": {}}}


def device_of(driver: str = "dra.example.com", **fields: object) -> DeviceData:
    attributes = {
        name: DeviceAttribute.model_validate(value, context=ALLOCATOR_INPUT)
        for name, value in dict(fields.get("attributes", {})).items()  # type: ignore[call-overload]
    }
    capacity = {
        name: DeviceCapacity.model_validate({"value": value})
        for name, value in dict(fields.get("capacity", {})).items()  # type: ignore[call-overload]
    }
    return DeviceData(
        key=repr(fields) + driver, driver=driver, attributes=attributes, capacity=capacity
    )


NAME_TRUE = {"name": {"bool": True}}


@pytest.mark.parametrize(
    ("expression", "device", "expected"),
    [
        ('"no-such-domain" in device.attributes', device_of(), False),
        (
            '"dra.example.com" in device.attributes',
            device_of(attributes={"dra.example.com/something": {"bool": True}}),
            True,
        ),
        ('device.driver == ""', device_of(driver=""), True),
        ('device.attributes["dra.example.com"].name', device_of(attributes=NAME_TRUE), True),
        ('device.attributes["dra.example.com"]["name"]', device_of(attributes=NAME_TRUE), True),
        (
            'cel.bind(dra, device.attributes["dra.example.com"], dra.name)',
            device_of(attributes=NAME_TRUE),
            True,
        ),
        (
            'device.attributes["other.example.com"].name',
            device_of(attributes={"other.example.com/name": {"bool": True}}),
            True,
        ),
        (
            'device.attributes["dra.example.com"].name.isGreaterThan(semver("v0.0.1", true))'
            ' && isSemver("v1.0.0", true)',
            device_of(attributes={"name": {"version": "1.0.0"}}),
            True,
        ),
        (
            '"name" in device.capacity["dra.example.com"]'
            ' && device.capacity["dra.example.com"].name.isGreaterThan(quantity("1Ki"))',
            device_of(capacity={"name": "1Mi"}),
            True,
        ),
        (
            '!("name" in device.capacity["dra.example.com"])'
            ' || device.capacity["dra.example.com"].name.isGreaterThan(quantity("1Ki"))',
            device_of(),
            True,
        ),
        (
            'device.attributes.exists_one(x, x == "dra.example.com")',
            device_of(attributes={"services": {"string": "some_example_value"}}),
            True,
        ),
        (
            'device.capacity["dra.example.com"].exists_one(x, x == "memory")',
            device_of(capacity={"memory": "1Mi"}),
            True,
        ),
        (
            'device.attributes["dra.example.com"].services.split("example").size() >= 2',
            device_of(attributes={"services": {"string": "some_example_value"}}),
            True,
        ),
        (
            'device.attributes["dra.example.com"].services.matches("[^a]?sym")',
            device_of(attributes={"services": {"string": "asymetric"}}),
            True,
        ),
    ],
)
def test_kubernetes_environment_cases(expression: str, device: DeviceData, expected: bool) -> None:
    assert SelectorEngine().matches(expression, device) is expected


def test_map_lookup_of_missing_id_is_an_error() -> None:
    expression = 'device.attributes["no-such-domain"]["noSuchAttr"].isGreaterThan(quantity("0"))'
    with pytest.raises(CelRuntimeError, match="no such key: noSuchAttr"):
        SelectorEngine().matches(expression, device_of())


def test_runaway_loops_exceed_the_cost_limit() -> None:
    ten = "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]"
    expression = "true"
    for name in "abcdefg":
        expression = f"{ten}.all({name}, {expression})"
    with pytest.raises(CelRuntimeError, match="actual cost limit exceeded"):
        SelectorEngine().matches(expression, device_of())


def test_small_loops_run() -> None:
    assert SelectorEngine().matches("[1, 2, 3].all(x, [4, 5].exists(y, y > x))", device_of())


def test_device_paths_treat_map_calls_as_whole_maps() -> None:
    assert device_paths('device.capacity["a"].exists_one(x, x == "memory")') is None
