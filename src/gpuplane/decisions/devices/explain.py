"""Say why claims do not fit on a node, with the numbers a user can act on.

Called only after a search failed, so it may re-evaluate selectors one by one
(their outcomes are cached anyway). It checks each request on its own against
the free devices of the node. If every request could be met alone, the reason
is the combination: constraints, shared counters, or devices two requests need.
"""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from gpuplane.decisions.devices.cel import CelError, SelectorEngine
from gpuplane.decisions.devices.pools import CandidateDevice, DeviceID, NodeInfo, Pool
from gpuplane.decisions.devices.requests import RequestData

__all__ = ["RequestReport", "explain_unfit", "survey_request"]


@dataclass
class RequestReport:
    """Tally of where the devices of a node drop out for one request or subrequest."""

    checked: int = 0
    rejected_by: dict[str, int] = field(default_factory=dict)
    """Selector expression to the number of devices it rejected first."""
    in_use: int = 0
    unreachable: int = 0
    uneval: int = 0
    free_matches: int = 0


def survey_request(engine: SelectorEngine, pools: Sequence[Pool], node: NodeInfo,
                   data: RequestData, allocated: AbstractSet[DeviceID]) -> RequestReport:
    """Count, over the usable pools, where each device drops out for ``data``."""
    report = RequestReport()
    for pool in pools:
        if not pool.usable:
            continue
        for device in pool.devices:
            report.checked += 1
            _classify(engine, node, data, device, allocated=allocated, report=report)
    return report


def _classify(engine: SelectorEngine, node: NodeInfo, data: RequestData, device: CandidateDevice,
              *, allocated: AbstractSet[DeviceID], report: RequestReport) -> None:
    for expression in (*data.class_selectors, *data.request_selectors):
        try:
            matched = engine.matches(expression, device.data)
        except CelError:
            report.uneval += 1
            return
        if not matched:
            report.rejected_by[expression] = report.rejected_by.get(expression, 0) + 1
            return
    if not device.reachable_from(node):
        report.unreachable += 1
    elif device.id in allocated and not data.admin_access:
        report.in_use += 1
    else:
        report.free_matches += 1


def _describe(report: RequestReport, needed: int, data: RequestData) -> str:
    parts = [f"{report.checked} devices checked"]
    for expression, count in report.rejected_by.items():
        parts.append(f"{count} rejected by '{expression}'")
    if report.in_use:
        parts.append(f"{report.in_use} allocated to other claims")
    if report.unreachable:
        parts.append(f"{report.unreachable} not reachable from the node")
    if report.uneval:
        parts.append(f"{report.uneval} could not be evaluated")
    requested = "all matching devices" if data.mode_all else f"{needed} device(s)"
    return (f"request {data.name} needs {requested} of class "
            f"{data.device_class.metadata.name}, {report.free_matches} free match(es): "
            + "; ".join(parts))


def explain_unfit(engine: SelectorEngine, node: NodeInfo, pools: Sequence[Pool],
                  claims: Sequence[tuple[str, list[list[RequestData]], list[str]]],
                  allocated: AbstractSet[DeviceID]) -> str:
    """Explain a failed search; each entry of ``claims`` is (key, alternatives, constraints)."""
    skipped = [pool for pool in pools if not pool.usable]
    for key, requests, _ in claims:
        for alternatives in requests:
            short = _shortest(engine, node, pools, alternatives, allocated)
            if short is not None:
                return f"node {node.name}: claim {key}: {short}{_skipped_note(skipped)}"
    limits = [f"{text} of claim {key}" for key, _, constraints in claims for text in constraints]
    if any(pool.counter_sets for pool in pools):
        limits.append("the shared counters of partitionable devices")
    condition = f" that satisfies {' and '.join(limits)}" if limits else ""
    return (f"node {node.name}: every request can be met on its own, but there is no combination "
            f"of free devices, one per request slot{condition}{_skipped_note(skipped)}")


def _shortest(engine: SelectorEngine, node: NodeInfo, pools: Sequence[Pool],
              alternatives: list[RequestData], allocated: AbstractSet[DeviceID]) -> str | None:
    """Describe the first alternative's shortage if no alternative fits on its own."""
    descriptions = []
    for data in alternatives:
        report = survey_request(engine, pools, node, data, allocated)
        if data.mode_all:
            needed = report.free_matches + report.in_use
            fits = report.free_matches > 0 and report.in_use == 0
        else:
            needed = data.num_devices
            fits = report.free_matches >= needed
        if fits:
            return None
        descriptions.append(_describe(report, needed, data))
    return " | ".join(descriptions)


def _skipped_note(skipped: Sequence[Pool]) -> str:
    if not skipped:
        return ""
    names = ", ".join(f"{pool.id} ({'incomplete' if pool.incomplete else 'invalid'})"
                      for pool in skipped)
    return f"; pools not used: {names}"
