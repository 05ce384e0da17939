"""Generate the tenancy objects of a Platform: what a namespace tenant gets besides its queues.

For every namespace of a tenant: RBAC for its owners, a ResourceQuota, a
LimitRange, NetworkPolicies, the serving Deployments with their
PodDisruptionBudgets, and golden-path Jobs users copy. Every object is a
:class:`Manifest` whose origin is the spec element that produced it.

Names gpuplane gives these objects start with ``gpuplane-`` so that they do
not collide with a tenant's own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gpuplane.model.errors import Location, SpecError
from gpuplane.model.platform.rendered import MANAGED_BY, Manifest
from gpuplane.model.platform.spec import (
    ClusterSpec,
    DisruptionBudget,
    JobTemplate,
    Platform,
    ServingSpec,
    Tenant,
    TenantQuota,
)
from gpuplane.model.quantity import format_amount, resource_amount
from gpuplane.model.yamlio import Document, FieldPath, format_path

__all__ = [
    "CHECKPOINT_ANNOTATION",
    "JOB_TEMPLATE_LABEL",
    "QUEUE_LABEL",
    "SERVING_LABEL",
    "derived_quota",
    "gpu_resource",
    "job_template_manifests",
    "tenant_manifests",
]

QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
KUEUE_PRIORITY_LABEL = "kueue.x-k8s.io/priority-class"
SERVING_LABEL = "app.kubernetes.io/name"
JOB_TEMPLATE_LABEL = "gpuplane.dev/job-template"
CHECKPOINT_ANNOTATION = "gpuplane.dev/checkpoint-write-seconds"
_TENANT_LABEL = "gpuplane.dev/tenant"
_DEVICE_QUOTA = "{}.deviceclass.resource.k8s.io/devices"
# Kueue resource names charged by a ResourceQuota under another key; names not
# listed and without a '/' (hugepages, for example) have no derived quota key.
_QUOTA_KEYS = {"cpu": "requests.cpu", "memory": "requests.memory",
               "ephemeral-storage": "requests.ephemeral-storage", "pods": "pods"}


class _Context:
    """Shared inputs of one tenant's generators: the spec, the tenant's field path and its cluster."""

    def __init__(self, platform: Platform, tenant: Tenant, index: int, document: Document | None) -> None:
        self.platform = platform
        self.tenant = tenant
        self.path: FieldPath = ("spec", "tenants", index)
        self.document = document
        self.cluster = platform.spec.cluster(tenant.cluster)

    def manifest(self, data: dict[str, Any], path: FieldPath = (),
                 origins: dict[FieldPath, FieldPath] | None = None) -> Manifest:
        metadata = data.setdefault("metadata", {})
        metadata["labels"] = {**MANAGED_BY, _TENANT_LABEL: self.tenant.name, **metadata.get("labels", {})}
        full = {prefix: self.path + origin for prefix, origin in (origins or {}).items()}
        return Manifest(data=data, document=self.document, path=self.path + path, origins=full,
                        cluster=self.cluster.name, generated=True)


def tenant_manifests(platform: Platform, tenant: Tenant, index: int, *,
                     document: Document | None = None) -> list[Manifest]:
    """Return the tenancy objects of ``tenant`` (``spec.tenants[index]``) in every namespace of it.

    A hard (``vcluster``) tenant gets only a ResourceQuota and a LimitRange
    in its host namespace. Its users work inside the virtual cluster, whose
    Helm values carry the rest.
    """
    context = _Context(platform, tenant, index, document)
    result: list[Manifest] = []
    for namespace in tenant.namespace_names:
        if tenant.isolation == "namespace":
            result.extend(_rbac(context, namespace))
        result.append(_resource_quota(context, namespace))
        result.append(_limit_range(context, namespace))
        if tenant.isolation == "namespace" and tenant.network.isolation == "tenant":
            result.extend(_network_policies(context, namespace))
    for serving_index, serving in enumerate(tenant.serving):
        result.extend(_serving(context, serving, serving_index))
    for budget_index, budget in enumerate(tenant.disruption_budgets):
        namespace = budget.namespace or tenant.namespace_names[0]
        result.append(context.manifest(
            _pdb(budget.name, namespace, budget.match_labels, budget),
            ("disruptionBudgets", budget_index),
            {("spec",): ("disruptionBudgets", budget_index)}))
    return result


# --- RBAC -----------------------------------------------------------------------------------------


def _subject(kind: str, name: str, namespace: str) -> dict[str, str]:
    if kind == "ServiceAccount":
        account_namespace, _, account = name.rpartition("/")
        return {"kind": kind, "name": account, "namespace": account_namespace or namespace}
    return {"kind": kind, "apiGroup": "rbac.authorization.k8s.io", "name": name}


def _rbac(context: _Context, namespace: str) -> Iterator[Manifest]:
    tenant = context.tenant
    if not tenant.owners:
        return
    yield context.manifest({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "gpuplane-queue-viewer", "namespace": namespace},
        "rules": [{"apiGroups": ["kueue.x-k8s.io"], "resources": ["localqueues", "workloads"],
                   "verbs": ["get", "list", "watch"]}],
    }, ("owners",))
    subjects = [_subject(owner.kind, owner.name, namespace) for owner in tenant.owners]
    yield context.manifest({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "gpuplane-queue-viewer", "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "gpuplane-queue-viewer"},
        "subjects": subjects,
    }, ("owners",))
    for role in ("admin", "edit", "view"):
        indexes = [i for i, owner in enumerate(tenant.owners) if owner.role == role]
        if not indexes:
            continue
        # The built-in aggregated ClusterRoles, bound per namespace, grant
        # nothing outside it.
        yield context.manifest({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": f"gpuplane-owners-{role}", "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [subjects[i] for i in indexes],
        }, ("owners", indexes[0]))


# --- ResourceQuota and LimitRange ---------------------------------------------------------------


def gpu_resource(cluster: ClusterSpec, flavors: list[str] | None = None) -> str:
    """Return the extended resource the GPU pools advertise (of ``flavors``, if given)."""
    for pool in cluster.node_pools:
        if pool.gpu is not None and pool.gpu.count and (flavors is None or pool.flavor_name in flavors):
            return pool.gpu.resource
    return "nvidia.com/gpu"


def _cohort_root(platform: Platform, name: str) -> str:
    parents = {cohort.name: cohort.parent for cohort in platform.spec.cohorts}
    seen: set[str] = set()
    while parents.get(name) and name not in seen:
        seen.add(name)
        name = parents[name] or name
    return name


def _cohort_total(platform: Platform, tenant: Tenant, flavor: str, resource: str) -> int:
    """Return the nominal quota of (flavor, resource) over the whole cohort tree of ``tenant``."""
    assert tenant.cohort is not None
    root = _cohort_root(platform, tenant.cohort)
    quotas: list[TenantQuota] = []
    for other in platform.spec.tenants:
        if other.cohort and _cohort_root(platform, other.cohort) == root:
            quotas.extend(other.quotas)
    for cohort in platform.spec.cohorts:
        if _cohort_root(platform, cohort.name) == root:
            quotas.extend(cohort.quotas)
    total = 0
    for quota in quotas:
        limits = quota.resources.get(resource)
        if quota.flavor == flavor and limits is not None:
            total += resource_amount(resource, limits.nominal_quota)
    return total


def _queue_ceiling(platform: Platform, tenant: Tenant, resource: str) -> int:
    """Return the most of ``resource`` Kueue can admit for ``tenant``, borrowing included."""
    ceiling = 0
    for quota in tenant.quotas:
        limits = quota.resources.get(resource)
        if limits is None:
            continue
        nominal = resource_amount(resource, limits.nominal_quota)
        if tenant.cohort is None:
            ceiling += nominal
            continue
        reachable = max(nominal, _cohort_total(platform, tenant, quota.flavor, resource))
        if limits.borrowing_limit is not None:
            reachable = min(reachable, nominal + resource_amount(resource, limits.borrowing_limit))
        ceiling += reachable
    return ceiling


def derived_quota(platform: Platform, tenant: Tenant) -> dict[str, str]:
    """Return the ResourceQuota ``hard`` values that match what Kueue can admit for ``tenant``.

    NOTE: a tenant with several namespaces gets the whole ceiling in each of
    them, because Kueue's quota is shared by the namespaces of one
    ClusterQueue and a per-namespace split would reject admitted workloads.
    """
    covered: list[str] = []
    for quota in tenant.quotas:
        covered.extend(resource for resource in quota.resources if resource not in covered)
    hard: dict[str, str] = {}
    for resource in covered:
        key = _QUOTA_KEYS.get(resource) or (f"requests.{resource}" if "/" in resource else None)
        if key is None:
            continue
        hard[key] = format_amount(resource, _queue_ceiling(platform, tenant, resource))
    cluster = platform.spec.cluster(tenant.cluster)
    gpus = _queue_ceiling(platform, tenant, gpu_resource(cluster))
    for device_class in tenant.allowed_device_classes:
        hard[_DEVICE_QUOTA.format(device_class)] = str(gpus)
    return hard


def _resource_quota(context: _Context, namespace: str) -> Manifest:
    tenant = context.tenant
    hard = derived_quota(context.platform, tenant) if tenant.namespace_quota.derive else {}
    origins: dict[FieldPath, FieldPath] = {}
    for key, value in tenant.namespace_quota.hard.items():
        hard[key] = str(value)
        origins[("spec", "hard", key)] = ("namespaceQuota", "hard", key)
    data = {"apiVersion": "v1", "kind": "ResourceQuota",
            "metadata": {"name": "gpuplane-quota", "namespace": namespace},
            "spec": {"hard": dict(sorted(hard.items()))}}
    return context.manifest(data, ("namespaceQuota",), origins)


def _limit_range(context: _Context, namespace: str) -> Manifest:
    defaults = context.tenant.container_defaults
    item: dict[str, Any] = {"type": "Container"}
    for key, values in (("default", defaults.default), ("defaultRequest", defaults.default_request),
                        ("max", defaults.max)):
        if values:
            item[key] = {name: str(value) for name, value in sorted(values.items())}
    data = {"apiVersion": "v1", "kind": "LimitRange",
            "metadata": {"name": "gpuplane-defaults", "namespace": namespace},
            "spec": {"limits": [item]}}
    origins: dict[FieldPath, FieldPath] = {("spec", "limits", 0, key): ("containerDefaults", key)
                                           for key in ("default", "defaultRequest", "max")}
    return context.manifest(data, ("containerDefaults",), origins)


# --- NetworkPolicy --------------------------------------------------------------------------------


def _network_policies(context: _Context, namespace: str) -> Iterator[Manifest]:
    tenant = context.tenant
    network = tenant.network
    path: FieldPath = ("network",)

    def policy(name: str, spec: dict[str, Any]) -> Manifest:
        return context.manifest({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                                 "metadata": {"name": name, "namespace": namespace}, "spec": spec}, path)

    # Egress must be listed explicitly: without it a policy with no egress
    # rules leaves egress open.
    yield policy("gpuplane-default-deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
    # Both selectors sit in one peer, so only kube-dns pods in kube-system
    # match; two peers would open every pod of kube-system.
    dns_peers: list[dict[str, Any]] = [{
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
    }]
    if network.node_local_dns:
        dns_peers.append({"ipBlock": {"cidr": f"{network.node_local_dns}/32"}})
    yield policy("gpuplane-allow-dns", {
        "podSelector": {},
        "policyTypes": ["Egress"],
        "egress": [{"to": dns_peers, "ports": [{"protocol": "UDP", "port": 53},
                                                {"protocol": "TCP", "port": 53}]}],
    })
    same_tenant = [{"namespaceSelector": {"matchLabels": {_TENANT_LABEL: tenant.name}}}]
    yield policy("gpuplane-allow-same-tenant", {
        "podSelector": {},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [{"from": same_tenant}],
        "egress": [{"to": same_tenant}],
    })
    if network.allow_ingress_from_namespaces:
        yield policy("gpuplane-allow-ingress-from", {
            "podSelector": {},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"namespaceSelector": {"matchExpressions": [{
                "key": "kubernetes.io/metadata.name", "operator": "In",
                "values": sorted(network.allow_ingress_from_namespaces)}]}}]}],
        })
    if network.allow_egress_cidrs:
        yield policy("gpuplane-allow-egress-cidrs", {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": {"cidr": cidr}} for cidr in network.allow_egress_cidrs]}],
        })


# --- serving and disruption budgets ---------------------------------------------------------------


def _pdb(name: str, namespace: str, match_labels: dict[str, str], budget: DisruptionBudget) -> dict[str, Any]:
    spec: dict[str, Any] = {"selector": {"matchLabels": dict(match_labels)}}
    if budget.min_available is not None:
        spec["minAvailable"] = budget.min_available
    else:
        spec["maxUnavailable"] = budget.max_unavailable
    if budget.unhealthy_pod_eviction_policy is not None:
        spec["unhealthyPodEvictionPolicy"] = budget.unhealthy_pod_eviction_policy
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def _container_resources(gpu: str, gpus: int, cpu: str | None, memory: str | None) -> dict[str, Any]:
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    if cpu is not None:
        requests["cpu"] = cpu
    if memory is not None:
        requests["memory"] = memory
        limits["memory"] = memory
    if gpus:
        limits[gpu] = str(gpus)
    return {key: value for key, value in (("requests", requests), ("limits", limits)) if value}


def _serving(context: _Context, serving: ServingSpec, index: int) -> Iterator[Manifest]:
    tenant = context.tenant
    if not serving.image:
        where = (context.document.locate((*context.path, "serving", index)) if context.document is not None
                 else Location(field=format_path((*context.path, "serving", index))))
        raise SpecError(problem=f"Serving {serving.name!r} of tenant {tenant.name!r} has no image, so its "
                        "Deployment would be rejected.", location=where,
                        hint="Set serving[].image, e.g. registry.example/team/server:1.0.")
    namespace = serving.namespace or tenant.namespace_names[0]
    selector = {SERVING_LABEL: serving.name}
    flavors = [quota.flavor for quota in tenant.quotas]
    pod_spec: dict[str, Any] = {"containers": [{
        "name": "server",
        "image": serving.image,
        "resources": _container_resources(gpu_resource(context.cluster, flavors or None),
                                          serving.gpus_per_replica, str(serving.cpu), str(serving.memory)),
    }]}
    priority = serving.priority_class or tenant.priority_class
    if priority:
        pod_spec["priorityClassName"] = priority
    if serving.termination_grace_period_seconds is not None:
        pod_spec["terminationGracePeriodSeconds"] = serving.termination_grace_period_seconds
    path: FieldPath = ("serving", index)
    # NOTE: the queue-name label puts the Deployment under Kueue only where
    # Kueue's deployment integration is enabled; elsewhere it is inert.
    yield context.manifest({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": serving.name, "namespace": namespace,
                     "labels": {**selector, QUEUE_LABEL: tenant.local_queue}},
        "spec": {"replicas": serving.replicas, "selector": {"matchLabels": dict(selector)},
                 "template": {"metadata": {"labels": dict(selector)}, "spec": pod_spec}},
    }, path, {("spec", "replicas"): ("serving", index, "replicas")})
    if serving.disruption_budget is not None:
        yield context.manifest(_pdb(serving.name, namespace, selector, serving.disruption_budget),
                               (*path, "disruptionBudget"),
                               {("spec",): ("serving", index, "disruptionBudget")})


# --- golden-path job templates --------------------------------------------------------------------


def job_template_manifests(platform: Platform, tenant: Tenant, index: int, *,
                           document: Document | None = None) -> list[Manifest]:
    """Return a suspended, queue-labelled Job for each golden-path template of ``tenant``.

    The Jobs are examples users copy; the renderer writes them outside the
    kustomization, so applying the tree does not start them.
    """
    context = _Context(platform, tenant, index, document)
    return [_job(context, template, position) for position, template in enumerate(tenant.job_templates)]


def _job(context: _Context, template: JobTemplate, position: int) -> Manifest:
    tenant = context.tenant
    flavors = [quota.flavor for quota in tenant.quotas]
    gpu = gpu_resource(context.cluster, flavors or None)
    memory = str(template.memory) if template.memory is not None else None
    cpu = str(template.cpu) if template.cpu is not None else None
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [{"name": "main", "image": template.image,
                        "resources": _container_resources(gpu, template.gpus_per_pod, cpu, memory)}],
    }
    priority = template.priority_class or tenant.priority_class
    if priority:
        pod_spec["priorityClassName"] = priority
    if template.termination_grace_period_seconds is not None:
        pod_spec["terminationGracePeriodSeconds"] = template.termination_grace_period_seconds
    labels = {QUEUE_LABEL: tenant.local_queue}
    if priority:
        labels[KUEUE_PRIORITY_LABEL] = priority
    annotations = {}
    if template.checkpoint_write_seconds is not None:
        annotations[CHECKPOINT_ANNOTATION] = str(template.checkpoint_write_seconds)
    spec: dict[str, Any] = {
        "suspend": True,
        "parallelism": template.pods,
        "completions": template.pods,
        # Drains and preemptions should not use up the retry budget.
        "podFailurePolicy": {"rules": [{"action": "Ignore",
                                        "onPodConditions": [{"type": "DisruptionTarget"}]}]},
        "template": {"metadata": {"labels": {JOB_TEMPLATE_LABEL: template.name}}, "spec": pod_spec},
    }
    if template.pods > 1:
        spec["completionMode"] = "Indexed"
    metadata: dict[str, Any] = {"name": template.name, "namespace": tenant.namespace_names[0],
                                "labels": labels}
    if annotations:
        metadata["annotations"] = annotations
    path: FieldPath = ("jobTemplates", position)
    origins: dict[FieldPath, FieldPath] = {
        ("spec", "template", "spec", "terminationGracePeriodSeconds"):
            (*path, "terminationGracePeriodSeconds"),
        ("metadata", "annotations", CHECKPOINT_ANNOTATION): (*path, "checkpointWriteSeconds"),
    }
    return context.manifest({"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": spec},
                            path, origins)
