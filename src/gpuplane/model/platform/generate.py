"""Generate the Kubernetes objects of one cluster of a Platform.

What is generated here is what scheduling reads: Namespaces, Nodes,
ResourceFlavors, Cohorts, ClusterQueues, LocalQueues, WorkloadPriorityClasses,
PriorityClasses and ResourceClaimTemplates. Nodes are not deployed (they join
the cluster on their own), but a simulation needs them. Tenancy objects (RBAC,
ResourceQuota, NetworkPolicy, guardrails) are added by the renderer.

A node pool with a ``devices`` section runs DRA drivers, so its nodes publish
their GPUs and NICs as ResourceSlices (see :mod:`gpuplane.model.inventory`).
They advertise no GPU extended resource, because a GPU is managed either by
the device plugin or by a DRA driver, not by both. Pools without ``devices``
are unchanged. The slices and the DeviceClasses come with the nodes, since
drivers publish the first and their Helm charts install the second.

Labels gpuplane sets:

- ``gpuplane.dev/tenant`` on a tenant's namespaces; its ClusterQueue selects them by it.
- ``gpuplane.dev/flavor`` and ``gpuplane.dev/node-pool`` on nodes; a flavor
  without explicit ``nodeLabels`` matches its nodes by the first.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from gpuplane.model.errors import InputError, Location, SpecError
from gpuplane.model.field_errors import errors_from_validation
from gpuplane.model.inventory import device_classes, node_devices, node_names, node_slices
from gpuplane.model.manifests import ObjectSet
from gpuplane.model.objects.base import ObjectMeta
from gpuplane.model.objects.core import LabelSelector, Namespace, Node, PriorityClass
from gpuplane.model.objects.kueue import (
    ClusterQueue,
    Cohort,
    LocalQueue,
    ResourceFlavor,
    WorkloadPriorityClass,
)
from gpuplane.model.objects.resource import ResourceClaimTemplate
from gpuplane.model.platform.spec import ClusterSpec, Platform, Tenant, TenantQuota
from gpuplane.model.yamlio import Document

__all__ = ["FLAVOR_LABEL", "NODE_POOL_LABEL", "TENANT_LABEL", "generate_cluster_objects"]

TENANT_LABEL = "gpuplane.dev/tenant"
FLAVOR_LABEL = "gpuplane.dev/flavor"
NODE_POOL_LABEL = "gpuplane.dev/node-pool"


def _where(document: Document | None, path: tuple[str | int, ...]) -> Location | None:
    return document.locate(path) if document is not None else None


def generate_cluster_objects(platform: Platform, cluster_name: str | None = None, *,
                             document: Document | None = None, include_nodes: bool = True,
                             problems: list[InputError] | None = None) -> ObjectSet:
    """Return the scheduling objects of one cluster of ``platform`` (the only one by default).

    A tenant whose ClusterQueue is invalid raises SpecError, unless ``problems``
    is a list: then the error is appended to it and the tenant's ClusterQueue
    and LocalQueues are left out, so that a check can still read the rest.
    """
    spec = platform.spec
    try:
        cluster = spec.cluster(cluster_name)
    except ValueError as error:
        message = str(error)
        raise SpecError(problem=f"{message[:1].upper()}{message[1:]}.",
                        location=Location(source=document.source if document else None, field="spec.clusters"),
                        allowed=", ".join(c.name for c in spec.clusters),
                        hint="Name one of the allowed clusters (simulate --cluster NAME).") from None
    result = ObjectSet()
    cluster_index = spec.clusters.index(cluster)
    _add_flavors(result, platform, cluster, document, cluster_index)
    if include_nodes:
        _add_nodes(result, cluster, document, cluster_index)
        _add_devices(result, cluster, document, cluster_index)
    for index, priority in enumerate(spec.priority_classes):
        location = _where(document, ("spec", "priorityClasses", index))
        result.add(WorkloadPriorityClass(metadata=ObjectMeta(name=priority.name), value=priority.value,
                                         description=priority.description), location)
        result.add(PriorityClass(metadata=ObjectMeta(name=priority.name), value=priority.value,
                                 description=priority.description,
                                 preemption_policy=priority.preemption_policy), location)
    for index, cohort in enumerate(spec.cohorts):
        body: dict[str, Any] = {"resourceGroups": _resource_groups(cohort.quotas)}
        if cohort.parent:
            body["parentName"] = cohort.parent
        if cohort.fair_sharing_weight is not None:
            body["fairSharing"] = {"weight": str(cohort.fair_sharing_weight)}
        result.add(Cohort.model_validate({"metadata": {"name": cohort.name}, "spec": body}),
                   _where(document, ("spec", "cohorts", index)))
    for index, tenant in enumerate(spec.tenants):
        if (tenant.cluster or spec.clusters[0].name) != cluster.name:
            continue
        _add_tenant(result, tenant, _where(document, ("spec", "tenants", index)), problems)
    _add_claim_templates(result, platform, cluster, document)
    return result


def _add_flavors(result: ObjectSet, platform: Platform, cluster: ClusterSpec, document: Document | None,
                 cluster_index: int) -> None:
    declared = {flavor.name: (index, flavor) for index, flavor in enumerate(platform.spec.flavors)}
    pools_by_flavor: dict[str, list[int]] = {}
    for index, pool in enumerate(cluster.node_pools):
        pools_by_flavor.setdefault(pool.flavor_name, []).append(index)
    names = list(pools_by_flavor) + [name for name in declared if name not in pools_by_flavor]
    for name in names:
        if name in declared:
            index, flavor = declared[name]
            body: dict[str, Any] = {
                "nodeLabels": dict(flavor.node_labels) or {FLAVOR_LABEL: name},
                "nodeTaints": [t.model_dump(exclude_defaults=True) for t in flavor.node_taints],
                "tolerations": [t.model_dump(exclude_defaults=True) for t in flavor.tolerations],
            }
            location = _where(document, ("spec", "flavors", index))
            for pool_index in pools_by_flavor.get(name, []):
                _check_pool_labels(cluster, pool_index, body["nodeLabels"], document, cluster_index)
        else:
            first = cluster.node_pools[pools_by_flavor[name][0]]
            body = {"nodeLabels": {FLAVOR_LABEL: name},
                    "nodeTaints": [t.model_dump(exclude_defaults=True) for t in first.taints]}
            location = _where(document, ("spec", "clusters", cluster_index, "nodePools", pools_by_flavor[name][0]))
        body = {key: value for key, value in body.items() if value}
        result.add(ResourceFlavor.model_validate({"metadata": {"name": name}, "spec": body}), location)


def _check_pool_labels(cluster: ClusterSpec, pool_index: int, node_labels: dict[str, str],
                       document: Document | None, cluster_index: int) -> None:
    pool = cluster.node_pools[pool_index]
    labels = {**pool.labels, FLAVOR_LABEL: pool.flavor_name, NODE_POOL_LABEL: pool.name}
    for key, value in node_labels.items():
        if labels.get(key) != value:
            location = _where(document, ("spec", "clusters", cluster_index, "nodePools", pool_index, "labels"))
            raise SpecError(
                problem=(f"Node pool {pool.name!r} belongs to flavor {pool.flavor_name!r}, whose nodeLabels "
                         f"require {key}={value}, but the pool's nodes do not carry that label."),
                location=location or Location(field=f"nodePools[{pool.name}].labels"),
                hint=f"Add {key}: {value!r} to the pool's labels, or change the flavor's nodeLabels.",
            )


def _add_nodes(result: ObjectSet, cluster: ClusterSpec, document: Document | None, cluster_index: int) -> None:
    for pool_index, pool in enumerate(cluster.node_pools):
        location = _where(document, ("spec", "clusters", cluster_index, "nodePools", pool_index))
        allocatable: dict[str, str] = {"cpu": str(pool.cpu), "memory": str(pool.memory), "pods": str(pool.pods)}
        labels = {**pool.labels, FLAVOR_LABEL: pool.flavor_name, NODE_POOL_LABEL: pool.name}
        if pool.gpu is not None and pool.gpu.count:
            if not pool.devices:
                allocatable[pool.gpu.resource] = str(pool.gpu.count)
            if pool.gpu.model and pool.gpu.resource == "nvidia.com/gpu":
                labels.setdefault("nvidia.com/gpu.product", pool.gpu.model)
        taints = [t.model_dump(exclude_defaults=True) for t in pool.taints]
        width = max(4, len(str(pool.count)))
        for number in range(pool.count):
            name = f"{pool.name}-{number:0{width}d}"
            node = Node.model_validate({
                "metadata": {"name": name, "labels": {**labels, "kubernetes.io/hostname": name}},
                "spec": {"taints": taints},
                "status": {"allocatable": allocatable, "capacity": allocatable},
            })
            result.add(node, location)


def _add_devices(result: ObjectSet, cluster: ClusterSpec, document: Document | None, cluster_index: int) -> None:
    """Add the ResourceSlices of every node of the pools with ``devices``, and the DeviceClasses."""
    pools = [(index, pool) for index, pool in enumerate(cluster.node_pools) if pool.devices]
    for pool_index, pool in pools:
        path = ("spec", "clusters", cluster_index, "nodePools", pool_index)
        model, devices = node_devices(pool, document=document, path=path)
        gpus = pool.gpu.count if pool.gpu is not None else 0
        location = _where(document, (*path, "devices"))
        for name in node_names(pool):
            for slice_ in node_slices(name, model, gpus, devices):
                result.add(slice_, location)
    if pools:
        for device_class in device_classes():
            result.add(device_class, None)


def _add_claim_templates(result: ObjectSet, platform: Platform, cluster: ClusterSpec,
                         document: Document | None) -> None:
    """Add each claim template to its namespace, or to every tenant namespace of the cluster."""
    spec = platform.spec
    namespaces = [namespace for tenant in spec.tenants_of(cluster.name) for namespace in tenant.namespace_names]
    everywhere = {namespace for tenant in spec.tenants for namespace in tenant.namespace_names}
    seen: set[tuple[str, str]] = set()
    for index, template in enumerate(spec.claim_templates):
        path = ("spec", "claimTemplates", index)
        wanted = template.metadata.namespace
        if wanted is not None and wanted not in everywhere:
            raise SpecError(problem=f"Claim template {template.metadata.name!r} is placed in namespace "
                            f"{wanted!r}, which belongs to no tenant.",
                            location=_where(document, (*path, "metadata", "namespace"))
                            or Location(field=f"spec.claimTemplates[{index}].metadata.namespace"),
                            value=wanted, allowed=", ".join(sorted(everywhere)) or "(no tenant namespaces)",
                            hint="Name a tenant's namespace, or leave metadata.namespace out to create the "
                                 "template in every tenant namespace.")
        # A template placed in a namespace of another cluster's tenant is generated with that cluster.
        targets = namespaces if wanted is None else [namespace for namespace in namespaces if namespace == wanted]
        for namespace in targets:
            key = (namespace, template.metadata.name)
            if key in seen:
                raise SpecError(problem=f"Claim template {template.metadata.name!r} is defined twice in "
                                f"namespace {namespace!r}.",
                                location=_where(document, (*path, "metadata", "name"))
                                or Location(field=f"spec.claimTemplates[{index}].metadata.name"),
                                hint="Rename one of the two, or give them different namespaces.")
            seen.add(key)
            metadata = template.metadata.model_dump(by_alias=True, exclude_defaults=True)
            body = {"metadata": {**metadata, "namespace": namespace},
                    "spec": template.spec.model_dump(by_alias=True, exclude_none=True)}
            result.add(ResourceClaimTemplate.model_validate(body), _where(document, path))


def _resource_groups(quotas: list[TenantQuota]) -> list[dict[str, Any]]:
    if not quotas:
        return []
    covered: list[str] = []
    for quota in quotas:
        for resource in quota.resources:
            if resource not in covered:
                covered.append(resource)
    flavors = []
    for quota in quotas:
        resources = []
        for resource in covered:
            limits = quota.resources.get(resource)
            entry: dict[str, Any] = {"name": resource,
                                     "nominalQuota": str(limits.nominal_quota) if limits else "0"}
            if limits is not None and limits.borrowing_limit is not None:
                entry["borrowingLimit"] = str(limits.borrowing_limit)
            if limits is not None and limits.lending_limit is not None:
                entry["lendingLimit"] = str(limits.lending_limit)
            resources.append(entry)
        flavors.append({"name": quota.flavor, "resources": resources})
    return [{"coveredResources": covered, "flavors": flavors}]


def _add_tenant(result: ObjectSet, tenant: Tenant, location: Location | None,
                problems: list[InputError] | None) -> None:
    for namespace in tenant.namespace_names:
        labels = {**tenant.labels, TENANT_LABEL: tenant.name, "kubernetes.io/metadata.name": namespace}
        result.add(Namespace(metadata=ObjectMeta(name=namespace, labels=labels)), location)
    body: dict[str, Any] = {
        "resourceGroups": _resource_groups(tenant.quotas),
        "queueingStrategy": tenant.queueing_strategy,
        "namespaceSelector": LabelSelector(match_labels={TENANT_LABEL: tenant.name}).model_dump(
            by_alias=True, exclude_defaults=True),
    }
    if tenant.cohort:
        body["cohortName"] = tenant.cohort
    if tenant.preemption is not None:
        body["preemption"] = tenant.preemption.model_dump(by_alias=True, exclude_none=True)
    if tenant.flavor_fungibility is not None:
        body["flavorFungibility"] = tenant.flavor_fungibility.model_dump(by_alias=True, exclude_none=True)
    if tenant.fair_sharing_weight is not None:
        body["fairSharing"] = {"weight": str(tenant.fair_sharing_weight)}
    try:
        queue = ClusterQueue.model_validate({"metadata": {"name": tenant.cluster_queue_name}, "spec": body})
    except ValidationError as error:
        invalid = _invalid_queue(tenant, error, location)
        if problems is None:
            raise invalid from None
        # Without its ClusterQueue the tenant's LocalQueues would point at nothing, so they are left out too.
        problems.append(invalid)
        return
    result.add(queue, location)
    for namespace in tenant.namespace_names:
        result.add(LocalQueue.model_validate({
            "metadata": {"name": tenant.local_queue, "namespace": namespace},
            "spec": {"clusterQueue": tenant.cluster_queue_name},
        }), location)


def _invalid_queue(tenant: Tenant, error: ValidationError, location: Location | None) -> SpecError:
    reasons = [f"{detail.location.field}: {detail.problem.removeprefix('Invalid ClusterQueue: ')}"
               for detail in errors_from_validation(error, None, (), kind="ClusterQueue")]
    return SpecError(problem=f"Tenant {tenant.name!r} generates an invalid ClusterQueue: {' '.join(reasons)}",
                     location=location or Location(field=f"tenants[{tenant.name}]"),
                     hint="Change the tenant's quotas, cohort or preemption so that Kueue accepts its ClusterQueue.")
