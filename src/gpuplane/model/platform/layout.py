"""Lay out every object of a Platform as a kustomize tree, one folder per cluster.

::

    <cluster>/kustomization.yaml          platform/ and every tenants/<name>/
    <cluster>/platform/*.yaml             cluster-scoped objects: priority and device classes,
                                          Kueue flavors, cohorts, ClusterQueues, guardrails
    <cluster>/tenants/<tenant>/*.yaml     Namespaces, LocalQueues, RBAC, quotas, network,
                                          serving, the tenant's own guardrails
    <cluster>/vclusters/<tenant>/         Helm values of a hard tenant's virtual cluster and a
                                          kustomization that inflates the chart (needs --enable-helm)
    <cluster>/job-templates/<tenant>/     golden-path Jobs, suspended; not in any kustomization
    <cluster>/simulation/                 Nodes, ResourceSlices and driver DeviceClasses for simulate
                                          and check; not in any kustomization

Nodes are not rendered: they join a cluster on their own. File names and the
order of objects in a file depend only on the spec, so the same spec always
gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gpuplane.model.errors import InputError, Location, SpecError
from gpuplane.model.inventory import device_classes
from gpuplane.model.objects.core import Node
from gpuplane.model.platform.generate import generate_cluster_objects
from gpuplane.model.platform.guardrails import (
    PolicyEngine,
    guardrail_manifests,
    platform_guardrails,
    tenant_guardrails,
)
from gpuplane.model.platform.rendered import MANAGED_BY, Manifest, manifest_from_object, parse_field
from gpuplane.model.platform.spec import ClusterSpec, Platform, Tenant
from gpuplane.model.platform.tenancy import gpu_resource, job_template_manifests, tenant_manifests
from gpuplane.model.platform.vcluster import vcluster_values
from gpuplane.model.yamlio import Document, FieldPath, iter_objects

__all__ = ["KIND_ORDER", "RenderedFile", "RenderedTree", "device_driver", "render_platform"]

KIND_ORDER = (
    "Namespace", "PriorityClass", "WorkloadPriorityClass", "DeviceClass", "ResourceFlavor", "Cohort",
    "ClusterQueue", "LocalQueue", "Role", "RoleBinding", "ResourceQuota", "LimitRange", "NetworkPolicy",
    "Deployment", "PodDisruptionBudget", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
    "ValidatingPolicy", "ResourceClaimTemplate", "Job",
)
_FILE_OF_KIND = {
    "Namespace": "namespaces.yaml", "PriorityClass": "priorityclasses.yaml",
    "WorkloadPriorityClass": "kueue-workloadpriorityclasses.yaml", "DeviceClass": "deviceclasses.yaml",
    "ResourceFlavor": "kueue-resourceflavors.yaml", "Cohort": "kueue-cohorts.yaml",
    "ClusterQueue": "kueue-clusterqueues.yaml", "LocalQueue": "kueue-localqueues.yaml",
    "Role": "rbac.yaml", "RoleBinding": "rbac.yaml", "ResourceQuota": "resourcequotas.yaml",
    "LimitRange": "limitranges.yaml", "NetworkPolicy": "networkpolicies.yaml",
    "Deployment": "serving.yaml", "PodDisruptionBudget": "disruptionbudgets.yaml",
    "ValidatingAdmissionPolicy": "guardrails.yaml", "ValidatingAdmissionPolicyBinding": "guardrails.yaml",
    "ValidatingPolicy": "guardrails.yaml", "ResourceClaimTemplate": "resourceclaimtemplates.yaml",
}
_INVENTORY_FILES = {"Node": "nodes.yaml", "ResourceSlice": "resourceslices.yaml", "DeviceClass": "deviceclasses.yaml"}
# The DRA driver that publishes the devices of each extended resource's vendor.
_DRIVERS = {"nvidia.com/gpu": "gpu.nvidia.com", "amd.com/gpu": "gpu.amd.com"}
_KUSTOMIZE = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization"}


@dataclass(slots=True)
class RenderedFile:
    """One output file: Kubernetes objects, or plain documents (kustomization, Helm values)."""

    path: str
    manifests: list[Manifest] = field(default_factory=list)
    plain: list[dict[str, Any]] = field(default_factory=list)

    @property
    def documents(self) -> list[dict[str, Any]]:
        return [manifest.data for manifest in self.manifests] + self.plain


@dataclass(slots=True)
class RenderedTree:
    """Every file of a render, by relative POSIX path, in sorted order."""

    files: list[RenderedFile]

    def manifests(self) -> list[Manifest]:
        return [manifest for file in self.files for manifest in file.manifests]


def device_driver(resource: str) -> str:
    """Return the DRA driver name for an extended resource such as ``nvidia.com/gpu``."""
    return _DRIVERS.get(resource, "gpu." + resource.split("/", 1)[0])


def _sort_key(manifest: Manifest) -> tuple[int, str, str]:
    kind = manifest.kind
    order = KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)
    return order, manifest.namespace or "", manifest.name


def render_platform(platform: Platform, *, document: Document | None = None, engine: PolicyEngine = "vap",
                    problems: list[InputError] | None = None, extra: Sequence[Document] = ()) -> RenderedTree:
    """Return every file of the rendered tree of ``platform``.

    With a ``problems`` list, a tenant whose ClusterQueue is invalid is
    recorded there and rendered without its queues, instead of raising.
    ``extra`` holds the other documents of the spec's file; their objects
    are written as they are into every cluster.
    """
    files: dict[str, RenderedFile] = {}
    for cluster in platform.spec.clusters:
        _render_cluster(files, platform, cluster, document, engine, problems, extra)
    return RenderedTree([files[path] for path in sorted(files)])


def _add(files: dict[str, RenderedFile], path: str, manifest: Manifest) -> None:
    files.setdefault(path, RenderedFile(path)).manifests.append(manifest)


def _render_cluster(files: dict[str, RenderedFile], platform: Platform, cluster: ClusterSpec,
                    document: Document | None, engine: PolicyEngine, problems: list[InputError] | None,
                    extra: Sequence[Document]) -> None:
    root = cluster.name
    tenants = [(index, tenant) for index, tenant in enumerate(platform.spec.tenants)
               if (tenant.cluster or platform.spec.clusters[0].name) == cluster.name]
    namespace_owner = {namespace: tenant.name for _, tenant in tenants for namespace in tenant.namespace_names}
    for index, tenant in tenants:
        _check_vcluster(tenant, index, document)

    generated = generate_cluster_objects(platform, cluster.name, document=document, include_nodes=False,
                                         problems=problems)
    for obj in generated.objects:
        if isinstance(obj, Node):
            continue
        location = generated.locations.get(id(obj))
        path = parse_field(location.field) if location is not None else ()
        manifest = manifest_from_object(obj, document=document, path=path, cluster=cluster.name)
        owner = namespace_owner.get(manifest.name if manifest.kind == "Namespace" else manifest.namespace or "")
        folder = f"{root}/tenants/{owner}" if owner else f"{root}/platform"
        _add(files, f"{folder}/{_FILE_OF_KIND[manifest.kind]}", manifest)

    for manifest in _device_classes(platform, cluster, [tenant for _, tenant in tenants], document):
        _add(files, f"{root}/platform/{_FILE_OF_KIND['DeviceClass']}", manifest)
    if tenants:
        for guardrail in platform_guardrails():
            for manifest in guardrail_manifests(guardrail, engine, cluster=cluster.name, document=document):
                _add(files, f"{root}/platform/{_FILE_OF_KIND[manifest.kind]}", manifest)

    for index, tenant in tenants:
        folder = f"{root}/tenants/{tenant.name}"
        for manifest in tenant_manifests(platform, tenant, index, document=document):
            _add(files, f"{folder}/{_FILE_OF_KIND[manifest.kind]}", manifest)
        for guardrail in tenant_guardrails(platform, tenant, index):
            for manifest in guardrail_manifests(guardrail, engine, cluster=cluster.name, document=document):
                _add(files, f"{folder}/{_FILE_OF_KIND[manifest.kind]}", manifest)
        for manifest in job_template_manifests(platform, tenant, index, document=document):
            _add(files, f"{root}/job-templates/{tenant.name}/{manifest.name}.yaml", manifest)
        if tenant.isolation == "vcluster":
            _add_vcluster(files, root, tenant, cluster)

    _add_extra_objects(files, platform, cluster, extra)
    _add_simulation_inventory(files, platform, cluster, document, problems is not None)
    for file in files.values():
        file.manifests.sort(key=_sort_key)
    _add_kustomizations(files, root)


def _add_extra_objects(files: dict[str, RenderedFile], platform: Platform, cluster: ClusterSpec,
                       extra: Sequence[Document]) -> None:
    """Write the objects that sit next to the Platform in its file: into a tenant folder when their
    namespace belongs to a tenant of the cluster, else into ``platform/``."""
    if not extra:
        return
    owners = {namespace: tenant.name for tenant in platform.spec.tenants_of(cluster.name)
              for namespace in tenant.namespace_names}
    rendered = {(m.kind, m.namespace, m.name) for path, file in files.items()
                if path.startswith(f"{cluster.name}/") for m in file.manifests}
    for document, object_path, data in iter_objects(extra):
        if not isinstance(data, dict):
            continue
        manifest = Manifest(data=data, document=document, path=object_path, cluster=cluster.name)
        if (manifest.kind, manifest.namespace, manifest.name) in rendered:
            raise SpecError(problem=f"{manifest.ref} is written next to the Platform, but the Platform already "
                            f"generates an object of that kind and name for cluster {cluster.name}.",
                            location=manifest.locate(("metadata", "name")),
                            hint="Rename the object, or drop it and let the Platform generate it.")
        owner = owners.get(manifest.namespace or "")
        folder = f"{cluster.name}/tenants/{owner}" if owner else f"{cluster.name}/platform"
        _add(files, f"{folder}/{_FILE_OF_KIND.get(manifest.kind, 'objects.yaml')}", manifest)


def _add_simulation_inventory(files: dict[str, RenderedFile], platform: Platform, cluster: ClusterSpec,
                              document: Document | None, collect_problems: bool) -> None:
    """Write the cluster's nodes and devices under ``simulation/``, outside every kustomization.

    Nodes join a cluster on their own, drivers publish ResourceSlices and
    their Helm charts install DeviceClasses, so none of them is applied;
    gpuplane simulate and check read them so that the rendered folder gives
    the same results as the spec. A DeviceClass a tenant may use is already
    in ``platform/`` and is not written twice.
    """
    # Problems were recorded by the first generation of this cluster; the second only adds the inventory.
    generated = generate_cluster_objects(platform, cluster.name, document=document, include_nodes=True,
                                         problems=[] if collect_problems else None)
    applied = files.get(f"{cluster.name}/platform/{_FILE_OF_KIND['DeviceClass']}")
    applied_classes = {manifest.name for manifest in applied.manifests} if applied is not None else set()
    for obj in generated.objects:
        if obj.kind not in _INVENTORY_FILES or (obj.kind == "DeviceClass" and obj.metadata.name in applied_classes):
            continue
        location = generated.locations.get(id(obj))
        path = parse_field(location.field) if location is not None else ()
        manifest = manifest_from_object(obj, document=document, path=path, cluster=cluster.name)
        _add(files, f"{cluster.name}/simulation/{_INVENTORY_FILES[obj.kind]}", manifest)


def _check_vcluster(tenant: Tenant, index: int, document: Document | None) -> None:
    if tenant.isolation == "vcluster" and len(tenant.namespace_names) != 1:
        where = (document.locate(("spec", "tenants", index, "namespaces")) if document is not None
                 else Location(field=f"spec.tenants[{index}].namespaces"))
        raise SpecError(problem=f"Tenant {tenant.name!r} is a vcluster tenant, which runs in exactly one "
                        f"host namespace, but it lists {len(tenant.namespace_names)}.",
                        location=where, value=tenant.namespace_names,
                        hint="List one host namespace; the tenant creates its own namespaces inside the "
                        "virtual cluster.")


def _device_classes(platform: Platform, cluster: ClusterSpec, tenants: list[Tenant],
                    document: Document | None) -> list[Manifest]:
    """Return a DeviceClass for each class the cluster's tenants may use.

    When a node pool describes its ``devices``, a class the device inventory
    defines gets the inventory's selectors. NOTE: any other class selects
    every device of the driver that serves the cluster's GPUs, so it cannot
    tell whole GPUs from MIG partitions.
    """
    driver = device_driver(gpu_resource(cluster))
    inventory = ({c.metadata.name: c for c in device_classes()}
                 if any(pool.devices for pool in cluster.node_pools) else {})
    first_use: dict[str, FieldPath] = {}
    for tenant in tenants:
        index = platform.spec.tenants.index(tenant)
        for position, name in enumerate(tenant.allowed_device_classes):
            first_use.setdefault(name, ("spec", "tenants", index, "allowedDeviceClasses", position))
    result = []
    for name, path in sorted(first_use.items()):
        known = inventory.get(name)
        selectors = ([selector.model_dump(by_alias=True, exclude_none=True) for selector in known.spec.selectors]
                     if known is not None else [{"cel": {"expression": f"device.driver == '{driver}'"}}])
        data = {"apiVersion": "resource.k8s.io/v1", "kind": "DeviceClass",
                "metadata": {"name": name, "labels": dict(MANAGED_BY)},
                "spec": {"selectors": selectors}}
        result.append(Manifest(data=data, document=document, path=path, cluster=cluster.name, generated=True))
    return result


def _add_vcluster(files: dict[str, RenderedFile], root: str, tenant: Tenant, cluster: ClusterSpec) -> None:
    folder = f"{root}/vclusters/{tenant.name}"
    files[f"{folder}/values.yaml"] = RenderedFile(f"{folder}/values.yaml",
                                                  plain=[vcluster_values(tenant, cluster)])
    chart = {"name": "vcluster", "repo": "https://charts.loft.sh", "version": tenant.vcluster.chart_version,
             "releaseName": tenant.name, "namespace": tenant.namespace_names[0], "valuesFile": "values.yaml"}
    files[f"{folder}/kustomization.yaml"] = RenderedFile(f"{folder}/kustomization.yaml",
                                                         plain=[{**_KUSTOMIZE, "helmCharts": [chart]}])


def _add_kustomizations(files: dict[str, RenderedFile], root: str) -> None:
    """Add a kustomization to platform/, each tenant folder and the cluster folder."""
    folders: dict[str, list[str]] = {}
    for path in files:
        folder, _, name = path.rpartition("/")
        parts = folder.split("/")
        if parts[0] == root and len(parts) >= 2 and parts[1] in {"platform", "tenants"}:
            folders.setdefault(folder, []).append(name)
    children = []
    for folder, names in sorted(folders.items()):
        path = f"{folder}/kustomization.yaml"
        files[path] = RenderedFile(path, plain=[{**_KUSTOMIZE, "resources": sorted(names)}])
        children.append(folder[len(root) + 1:])
    files[f"{root}/kustomization.yaml"] = RenderedFile(f"{root}/kustomization.yaml",
                                                      plain=[{**_KUSTOMIZE, "resources": children}])
