"""Turn a finished search into one ``status.allocation`` per claim."""

from __future__ import annotations

from collections.abc import Sequence

from gpuplane.decisions.devices.outcome import ClaimAllocation, DeviceResult
from gpuplane.decisions.devices.requests import RequestData
from gpuplane.decisions.devices.search import Pick
from gpuplane.model.objects.core import NodeSelector, NodeSelectorRequirement, NodeSelectorTerm
from gpuplane.model.objects.resource import DeviceAllocationConfiguration, ResourceClaim

__all__ = ["build_allocation"]


def build_allocation(claim: ResourceClaim, picks: Sequence[Pick], chosen: Sequence[RequestData],
                     *, node: str, binding: bool) -> ClaimAllocation:
    """Build the allocation of ``claim`` from its picks, in search order.

    ``chosen`` has the request data used for each request of the claim (the
    selected subrequest of a ``firstAvailable`` request). ``binding`` is whether
    binding conditions are enabled, and ``node`` is the node allocated for.
    """
    results = tuple(_result(pick, binding) for pick in picks)
    config = (*_class_config(chosen), *_claim_config(claim, chosen))
    return ClaimAllocation(claim=claim.key, results=results, config=config,
                           node_selector=node_selector(picks, node=node, binding=binding))


def _result(pick: Pick, binding: bool) -> DeviceResult:
    data = pick.data
    device = pick.device.device
    return DeviceResult(
        request=data.name,
        device=pick.device.id,
        admin_access=True if data.admin_access else None,
        tolerations=data.tolerations,
        share_id=pick.share_id,
        consumed_capacity=tuple(sorted(pick.consumed.items())),
        binding_conditions=tuple(device.binding_conditions) if binding else (),
        binding_failure_conditions=tuple(device.binding_failure_conditions) if binding else (),
    )


def _class_config(chosen: Sequence[RequestData]) -> list[DeviceAllocationConfiguration]:
    """Return each class's config once, listing every request that used the class."""
    config: list[DeviceAllocationConfiguration] = []
    by_class: dict[str, list[DeviceAllocationConfiguration]] = {}
    for data in chosen:
        class_name = data.device_class.metadata.name
        entries = by_class.get(class_name)
        if entries is not None:
            for entry in entries:
                entry.requests.append(data.name)
            continue
        entries = [DeviceAllocationConfiguration(source="FromClass", requests=[data.name],
                                                 opaque=item.opaque)
                   for item in data.device_class.spec.config]
        by_class[class_name] = entries
        config.extend(entries)
    return config


def _claim_config(claim: ResourceClaim,
                  chosen: Sequence[RequestData]) -> list[DeviceAllocationConfiguration]:
    """Claim config entries that apply to an allocated request or chosen subrequest.

    NOTE: as in Kubernetes 1.35, an entry naming two requests is copied once per
    named request; later releases copy it once.
    """
    config: list[DeviceAllocationConfiguration] = []
    for item in claim.spec.devices.config:
        copies = 1 if not item.requests else sum(
            1 for data in chosen
            if data.base_name in item.requests or (data.sub_name and data.name in item.requests))
        entry = {"source": "FromClaim", "requests": list(item.requests), "opaque": item.opaque}
        config.extend(DeviceAllocationConfiguration.model_validate(entry) for _ in range(copies))
    return config


def node_selector(picks: Sequence[Pick], *, node: str, binding: bool) -> NodeSelector | None:
    """Return where the picked devices can be used; None means every node.

    One node-local device pins the claim to its node. So does a device that binds
    to the node it is allocated for, when binding conditions are on. Otherwise
    the single-term selectors of network-attached devices are merged (AND)
    without duplicates.
    Raises ``ValueError`` for a selector with several terms, which the API forbids.
    """
    match_fields: list[NodeSelectorRequirement] = []
    match_expressions: list[NodeSelectorRequirement] = []
    for pick in picks:
        device = pick.device
        spec = device.slice.spec
        place = device.device if device.per_device_node else spec
        if place.node_name:
            return _pinned(place.node_name)
        if binding and device.device.binds_to_node:
            return _pinned(node)
        if place.node_selector is not None and place.node_selector.node_selector_terms:
            terms = place.node_selector.node_selector_terms
            if len(terms) > 1:
                raise ValueError(f"unsupported ResourceSlice.NodeSelector with {len(terms)} terms")
            term = terms[0]
            _merge(term.match_fields, match_fields)
            _merge(term.match_expressions, match_expressions)
    if not match_fields and not match_expressions:
        return None
    return NodeSelector(node_selector_terms=[
        NodeSelectorTerm(match_fields=match_fields, match_expressions=match_expressions)])


def _pinned(node_name: str) -> NodeSelector:
    requirement = NodeSelectorRequirement(key="metadata.name", operator="In", values=[node_name])
    return NodeSelector(node_selector_terms=[NodeSelectorTerm(match_fields=[requirement])])


def _merge(source: Sequence[NodeSelectorRequirement],
           target: list[NodeSelectorRequirement]) -> None:
    for requirement in source:
        if not any(_same(requirement, existing) for existing in target):
            target.append(requirement)


def _same(a: NodeSelectorRequirement, b: NodeSelectorRequirement) -> bool:
    return a.key == b.key and a.operator == b.operator and set(a.values) == set(b.values)
