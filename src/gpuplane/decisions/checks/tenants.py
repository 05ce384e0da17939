"""Rules on tenants, devices, priority classes, network isolation and manifest text."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from gpuplane.decisions.checks.base import CheckInput, Finding, Rule, Severity, amount, pod_templates
from gpuplane.decisions.checks.hardware import ClusterHardware
from gpuplane.model.manifests import typed_object
from gpuplane.model.objects.resource import ResourceClaim, ResourceClaimSpec, ResourceClaimTemplate
from gpuplane.model.platform.rendered import Manifest
from gpuplane.model.validation import validate_object

__all__ = ["TENANT_RULES"]

_MAX_USER_PRIORITY = 1_000_000_000


def _crd_versions(check: CheckInput) -> Iterator[Finding]:
    if check.platform is None:
        return
    spec = check.platform.spec
    first: dict[tuple[str, str], tuple[str, str]] = {}
    for index, tenant in enumerate(spec.tenants):
        if tenant.isolation != "namespace":
            continue
        cluster = tenant.cluster or spec.clusters[0].name
        for group, version in tenant.crds.items():
            owner, wanted = first.setdefault((cluster, group), (tenant.name, version))
            if wanted != version:
                yield C1.finding(
                    f"Tenants {owner} and {tenant.name} share cluster {cluster} as namespace tenants but need "
                    f"{group} at versions {wanted} and {version}; a CRD is cluster-scoped, so only one "
                    "version can be installed.",
                    f"Make one of them a hard tenant (isolation: vcluster), which installs its own CRDs, or "
                    f"agree on one version of {group}.",
                    check.spec_location(("spec", "tenants", index, "crds", group)), cluster=cluster)


def _registry_prefix(registry: str) -> str:
    return registry if registry.endswith("/") else registry + "/"


def _golden_path(check: CheckInput) -> Iterator[Finding]:
    if check.platform is None:
        return
    for index, tenant in enumerate(check.platform.spec.tenants):
        prefixes = [_registry_prefix(r) for r in tenant.allowed_registries]
        entries: list[tuple[str, Any, int, str | None]] = []
        for position, job in enumerate(tenant.job_templates):
            entries.append((f"jobTemplates[{position}]", ("jobTemplates", position), job.gpus_per_pod,
                            job.priority_class))
        for position, serving in enumerate(tenant.serving):
            entries.append((f"serving[{position}]", ("serving", position), serving.gpus_per_replica,
                            serving.priority_class))
        images = [job.image for job in tenant.job_templates] + [serving.image for serving in tenant.serving]
        for (label, path, gpus, priority), image in zip(entries, images, strict=True):
            base = ("spec", "tenants", index, *path)
            if tenant.max_gpus_per_pod is not None and gpus > tenant.max_gpus_per_pod:
                yield G1.finding(f"Tenant {tenant.name} {label} asks for {gpus} GPUs per pod, above the tenant's "
                                 f"maxGpusPerPod {tenant.max_gpus_per_pod}; its own guardrail rejects it.",
                                 "Lower the GPUs per pod, or raise maxGpusPerPod.",
                                 check.spec_location(base))
            if prefixes and not any(image.startswith(prefix) for prefix in prefixes):
                yield G1.finding(f"Tenant {tenant.name} {label} uses image {image!r}, which is not under an "
                                 f"allowed registry ({', '.join(prefixes)}).",
                                 "Use an image from an allowed registry, or add its registry to allowedRegistries.",
                                 check.spec_location((*base, "image")))
            chosen = priority or tenant.priority_class
            if tenant.allowed_priority_classes and chosen and chosen not in tenant.allowed_priority_classes:
                yield G1.finding(f"Tenant {tenant.name} {label} uses priority class {chosen}, which is not in "
                                 f"its allowedPriorityClasses {tenant.allowed_priority_classes}.",
                                 "Pick an allowed priority class, or allow this one.",
                                 check.spec_location(base))


def _largest_node(check: CheckInput, cluster: str | None, resource: str) -> int | None:
    sizes = []
    for node in check.of_kind("Node"):
        if node.cluster != cluster:
            continue
        allocatable = node.get("status", "allocatable") or node.get("status", "capacity") or {}
        sizes.append(amount(resource, allocatable.get(resource, 0)) or 0)
    return max(sizes) if sizes else None


def _pod_devices(template_spec: dict[str, Any]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for container in template_spec.get("containers") or []:
        limits = (container.get("resources") or {}).get("limits") or {}
        for resource, value in limits.items():
            if "/" in str(resource):
                totals[resource] = totals.get(resource, 0) + (amount(resource, value) or 0)
    return totals


def _unsatisfiable_devices(check: CheckInput) -> Iterator[Finding]:
    for manifest in check.manifests:
        for template in pod_templates(manifest):
            for resource, count in sorted(_pod_devices(template.spec).items()):
                largest = _largest_node(check, manifest.cluster, resource)
                if largest is not None and count > largest:
                    yield D1.finding(f"{manifest.ref} asks for {count} {resource} in one pod, but the largest "
                                     f"node offers {largest}; the pod can never be scheduled.",
                                     "Split the work over more pods (a gang), or add nodes with more devices.",
                                     manifest.locate((*template.path, "spec", "containers")), manifest=manifest)
    yield from _device_classes_without_devices(check)
    yield from _unallocatable_claims(check)


def _unallocatable_claims(check: CheckInput) -> Iterator[Finding]:
    """Report claim templates and claims that no node's devices can satisfy.

    A spec places one template in every tenant namespace; the finding is given
    once per cluster and template body, naming the namespaces.
    """
    hardware: dict[str | None, ClusterHardware] = {}
    groups: dict[tuple[str | None, str, str], list[tuple[Manifest, ResourceClaimSpec]]] = {}
    for manifest in check.of_kind("ResourceClaimTemplate", "ResourceClaim"):
        obj = typed_object(manifest.data)
        if isinstance(obj, ResourceClaimTemplate):
            spec = obj.spec.spec
        elif isinstance(obj, ResourceClaim):
            if obj.status.allocation is not None:
                continue
            spec = obj.spec
        else:
            continue  # an invalid object is left to the schema rule
        key = (manifest.cluster, manifest.kind, json.dumps(manifest.data.get("spec"), sort_keys=True))
        groups.setdefault(key, []).append((manifest, spec))
    for (cluster, kind, _), members in groups.items():
        manifest, spec = members[0]
        if cluster not in hardware:
            hardware[cluster] = ClusterHardware(check, cluster)
        unfit = hardware[cluster].unfit_claim(manifest.name, spec)
        if unfit is None:
            continue
        reason, claim_error = unfit
        fix = ("Create the DeviceClass it names, or correct its deviceClassName and selectors." if claim_error else
               "Loosen the request (count, selectors, constraints), or add nodes whose devices match it.")
        namespaces = sorted({member.namespace or "" for member, _ in members})
        where = f" in namespace(s) {', '.join(namespaces)}" if any(namespaces) else ""
        on = f" of cluster {cluster}" if cluster else ""
        yield D1.finding(f"{kind} {manifest.name}{where}{on} asks for devices that no node can provide: {reason}.",
                         fix, manifest.locate(("spec",)), manifest=manifest)


def _device_classes_without_devices(check: CheckInput) -> Iterator[Finding]:
    if check.platform is None:
        return
    spec = check.platform.spec
    for index, tenant in enumerate(spec.tenants):
        cluster = spec.cluster(tenant.cluster)
        has_devices = any(pool.gpu is not None and pool.gpu.count and pool.count for pool in cluster.node_pools)
        if tenant.allowed_device_classes and not has_devices:
            yield D1.finding(f"Tenant {tenant.name} may use device classes {tenant.allowed_device_classes}, but "
                             f"cluster {cluster.name} has no node pool with devices; no ResourceSlice can satisfy "
                             "a claim.", "Add a GPU node pool to the cluster, or drop the device classes.",
                             check.spec_location(("spec", "tenants", index, "allowedDeviceClasses")),
                             cluster=cluster.name)


def _priority_classes(check: CheckInput) -> Iterator[Finding]:
    classes = check.of_kind("PriorityClass")
    defaults = [m for m in classes if m.data.get("globalDefault") is True]
    for manifest in classes:
        value = manifest.data.get("value")
        if isinstance(value, int) and value > _MAX_USER_PRIORITY:
            yield R1.finding(f"{manifest.ref} has value {value}; user classes may not exceed 1000000000, which "
                             "keeps the band above it for system-cluster-critical and system-node-critical.",
                             "Lower the value to at most 1000000000.", manifest.locate(("value",)),
                             manifest=manifest)
        if manifest.name.startswith("system-"):
            yield R1.finding(f"{manifest.ref}: the prefix system- is reserved for built-in classes.",
                             "Rename the class.", manifest.locate(("metadata", "name")), manifest=manifest)
    if len(defaults) > 1:
        names = ", ".join(m.name for m in defaults)
        yield R1.finding(f"PriorityClasses {names} all set globalDefault; at most one may.",
                         "Keep globalDefault on one class.", defaults[1].locate(("globalDefault",)),
                         manifest=defaults[1])
    if check.platform is not None:
        defined = {p.name for p in check.platform.spec.priority_classes}
        for index, tenant in enumerate(check.platform.spec.tenants):
            for position, name in enumerate(tenant.allowed_priority_classes):
                if name not in defined:
                    yield R1.finding(f"Tenant {tenant.name} may use priority class {name}, which the platform does "
                                     "not define; pods naming it are rejected at admission.",
                                     f"Define {name} under spec.priorityClasses, or remove it.",
                                     check.spec_location(("spec", "tenants", index, "allowedPriorityClasses",
                                                          position)))


def _is_default_deny_egress(policy: Manifest) -> bool:
    types = policy.get("spec", "policyTypes") or []
    return policy.get("spec", "podSelector") == {} and "Egress" in types and not policy.get("spec", "egress")


def _dns_rules(policy: Manifest) -> Iterator[tuple[int, dict[str, Any]]]:
    for index, rule in enumerate(policy.get("spec", "egress") or []):
        ports = rule.get("ports") or []
        if not ports or any(str(port.get("port")) in {"53", "dns", "dns-tcp"} for port in ports):
            yield index, rule


def _network(check: CheckInput) -> Iterator[Finding]:
    by_namespace: dict[str, list[Manifest]] = {}
    for policy in check.of_kind("NetworkPolicy"):
        by_namespace.setdefault(policy.namespace or "", []).append(policy)
    for namespace, policies in sorted(by_namespace.items()):
        deny = [p for p in policies if _is_default_deny_egress(p)]
        dns = [(p, i, rule) for p in policies for i, rule in _dns_rules(p)]
        if deny and not dns:
            yield N1.finding(f"{deny[0].ref} denies all egress in namespace {namespace}, and no policy there "
                             "allows DNS; every name lookup times out.",
                             "Allow egress to kube-dns in kube-system on port 53, UDP and TCP.",
                             deny[0].locate(("spec", "policyTypes")), manifest=deny[0])
        for policy, index, rule in dns:
            yield from _dns_rule_problems(policy, index, rule)


def _dns_rule_problems(policy: Manifest, index: int, rule: dict[str, Any]) -> Iterator[Finding]:
    ports = rule.get("ports") or []
    protocols = {str(port.get("protocol", "TCP")) for port in ports}
    if ports and protocols == {"UDP"}:
        yield N1.finding(f"{policy.ref} allows DNS over UDP only; answers too large for UDP retry over TCP and "
                         "then fail.", "Allow port 53 over TCP as well.",
                         policy.locate(("spec", "egress", index, "ports")), manifest=policy,
                         severity=Severity.WARNING)
    peers = rule.get("to") or []
    namespace_only = any("namespaceSelector" in peer and "podSelector" not in peer for peer in peers)
    pod_only = any("podSelector" in peer and "namespaceSelector" not in peer for peer in peers)
    if namespace_only and pod_only:
        yield N1.finding(f"{policy.ref} puts namespaceSelector and podSelector in separate peers of its DNS rule; "
                         "separate peers are ORed, which opens every pod of that namespace (and same-namespace "
                         "pods with the label).",
                         "Put both selectors in one element of 'to', so they are ANDed.",
                         policy.locate(("spec", "egress", index, "to")), manifest=policy, severity=Severity.WARNING)


def _yaml_types(check: CheckInput) -> Iterator[Finding]:
    for manifest in check.manifests:
        if manifest.generated:
            continue
        metadata = manifest.data.get("metadata") or {}
        for field in ("labels", "annotations"):
            for key, value in (metadata.get(field) or {}).items():
                if not isinstance(value, str):
                    yield Y1.finding(f"{manifest.ref} {field} {key} is read as {type(value).__name__} {value!r}: "
                                     "Kubernetes parses YAML 1.1, where on, yes, y, 1e3 and 0755 are not strings, "
                                     "so the API server rejects the object.",
                                     "Quote the value.", manifest.locate(("metadata", field, key)),
                                     manifest=manifest)


_LABEL_TYPE = re.compile(r"^metadata\.(labels|annotations)\.[^:]+: .* is not of type ")


def _schema(check: CheckInput) -> Iterator[Finding]:
    for manifest in check.manifests:
        if manifest.generated or not manifest.kind or manifest.kind == "Kustomization":
            continue
        for problem in validate_object(manifest.data, check.kubernetes_version):
            if problem.startswith("no schema for"):
                break
            if _LABEL_TYPE.match(problem):
                continue  # Y1 reports a label or annotation that YAML 1.1 did not read as a string
            yield S1.finding(f"{manifest.ref} does not match the Kubernetes {check.kubernetes_version} schema: "
                             f"{problem}.", "Fix or remove the field; the API server rejects the object.",
                             manifest.locate(), manifest=manifest)


C1 = Rule("C1", "Namespace tenants that need different versions of one CRD", Severity.ERROR, _crd_versions)
G1 = Rule("G1", "Golden path (job template or serving) that breaks its tenant's guardrails", Severity.ERROR,
          _golden_path)
D1 = Rule("D1", "Device request that no node or device class can satisfy", Severity.ERROR, _unsatisfiable_devices)
R1 = Rule("R1", "PriorityClass outside the user band, duplicate default, or undefined", Severity.ERROR,
          _priority_classes)
N1 = Rule("N1", "Default-deny egress without a correct DNS allow", Severity.ERROR, _network)
Y1 = Rule("Y1", "Label or annotation value that YAML 1.1 reads as a non-string", Severity.ERROR, _yaml_types)
S1 = Rule("S1", "Object that does not match the Kubernetes or CRD schema", Severity.ERROR, _schema)

TENANT_RULES = [C1, G1, D1, R1, N1, Y1, S1]
