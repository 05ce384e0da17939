"""Admission guardrails for tenant namespaces, as CEL policies.

Each guardrail is one CEL rule set (variables, validations) with the
resources it applies to. It is rendered either as a native
ValidatingAdmissionPolicy with its ValidatingAdmissionPolicyBinding
(``admissionregistration.k8s.io/v1``, GA since Kubernetes 1.30), or as a
Kyverno ``ValidatingPolicy`` (``policies.kyverno.io/v1``) that carries the
same expressions. Platform-wide guardrails bind to every tenant namespace;
per-tenant ones (registries, GPUs per pod, priority classes) bind to the
namespaces of one tenant by the ``gpuplane.dev/tenant`` label.

Guardrails that read pod specs apply to Pods and to the pod templates of
Jobs, Deployments and StatefulSets, so a bad Job is rejected when it is
submitted rather than after Kueue admitted it and its pods fail to start.
JobSets and LeaderWorkerSets are covered through the Jobs and StatefulSets
they create.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from gpuplane.model.platform.rendered import MANAGED_BY, Manifest
from gpuplane.model.platform.spec import Platform, Tenant
from gpuplane.model.platform.tenancy import QUEUE_LABEL, gpu_resource
from gpuplane.model.yamlio import Document, FieldPath

__all__ = [
    "POLICY_ENGINES",
    "Guardrail",
    "PolicyEngine",
    "guardrail_manifests",
    "platform_guardrails",
    "tenant_guardrails",
]

PolicyEngine = Literal["vap", "kyverno"]
POLICY_ENGINES: tuple[PolicyEngine, ...] = ("vap", "kyverno")
_TENANT_LABEL = "gpuplane.dev/tenant"

_POD_RULES: list[dict[str, Any]] = [
    {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["pods"]},
    {"apiGroups": ["batch"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["jobs"]},
    {"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
     "resources": ["deployments", "statefulsets"]},
]
_JOB_RULES: list[dict[str, Any]] = [
    {"apiGroups": ["batch"], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["jobs"]},
    {"apiGroups": ["jobset.x-k8s.io"], "apiVersions": ["v1alpha2"], "operations": ["CREATE"],
     "resources": ["jobsets"]},
    {"apiGroups": ["leaderworkerset.x-k8s.io"], "apiVersions": ["v1"], "operations": ["CREATE"],
     "resources": ["leaderworkersets"]},
]
# The pod spec of a Pod or of a workload's pod template, and every container
# in it; the CEL has() macro guards the optional lists.
_POD_VARIABLES: list[dict[str, str]] = [
    {"name": "podSpec", "expression": "object.kind == 'Pod' ? object.spec : object.spec.template.spec"},
    {"name": "containers", "expression": (
        "variables.podSpec.containers"
        " + (has(variables.podSpec.initContainers) ? variables.podSpec.initContainers : [])"
        " + (has(variables.podSpec.ephemeralContainers) ? variables.podSpec.ephemeralContainers : [])")},
]


@dataclass(frozen=True, slots=True)
class Guardrail:
    """One admission rule set: what it matches, its CEL, and which namespaces it binds to."""

    name: str
    description: str
    rules: list[dict[str, Any]]
    validations: list[dict[str, str]]
    variables: list[dict[str, str]] = field(default_factory=list)
    match_conditions: list[dict[str, str]] = field(default_factory=list)
    tenant: str | None = None
    origin: FieldPath = ()

    def namespace_selector(self) -> dict[str, Any]:
        if self.tenant is None:
            return {"matchExpressions": [{"key": _TENANT_LABEL, "operator": "Exists"}]}
        return {"matchLabels": {_TENANT_LABEL: self.tenant}}


def _cel_string(text: str) -> str:
    """Quote ``text`` as a CEL string literal (JSON escapes are valid CEL escapes)."""
    return json.dumps(text)


def _cel_list(items: list[str]) -> str:
    return "[" + ", ".join(_cel_string(item) for item in items) + "]"


def platform_guardrails() -> list[Guardrail]:
    """Return the guardrails every tenant namespace gets."""
    return [
        Guardrail(
            name="gpuplane-require-queue-name",
            description="Batch workloads must name a Kueue LocalQueue, so Kueue admits them against quota.",
            rules=_JOB_RULES,
            # Jobs of a JobSet inherit its admission; Kueue's own documentation
            # skips them the same way.
            match_conditions=[{"name": "not-owned-by-jobset", "expression": (
                "!has(object.metadata.ownerReferences) || "
                "!object.metadata.ownerReferences.exists(ref, ref.kind == 'JobSet')")}],
            validations=[{
                "expression": (f"has(object.metadata.labels) && {_cel_string(QUEUE_LABEL)} in "
                               f"object.metadata.labels && object.metadata.labels[{_cel_string(QUEUE_LABEL)}]"
                               " != ''"),
                "message": f"set the label {QUEUE_LABEL} to a LocalQueue of this namespace",
            }],
        ),
        Guardrail(
            name="gpuplane-require-requests-limits",
            description="Every container states cpu and memory requests and a memory limit.",
            # Pods only: the LimitRange fills defaults into pods, not into the
            # templates of their controllers.
            rules=[_POD_RULES[0]],
            variables=[{"name": "containers", "expression": (
                "object.spec.containers"
                " + (has(object.spec.initContainers) ? object.spec.initContainers : [])")}],
            validations=[{
                "expression": ("variables.containers.all(c, has(c.resources) && has(c.resources.requests)"
                               " && 'cpu' in c.resources.requests && 'memory' in c.resources.requests)"),
                "message": "every container needs resources.requests.cpu and resources.requests.memory",
            }, {
                "expression": ("variables.containers.all(c, has(c.resources) && has(c.resources.limits)"
                               " && 'memory' in c.resources.limits)"),
                "message": "every container needs resources.limits.memory",
            }],
        ),
        Guardrail(
            name="gpuplane-deny-privileged",
            description="No container runs privileged.",
            rules=_POD_RULES,
            variables=_POD_VARIABLES,
            validations=[{
                "expression": ("variables.containers.all(c, !has(c.securityContext) || "
                               "!has(c.securityContext.privileged) || c.securityContext.privileged == false)"),
                "message": "privileged containers are not allowed in tenant namespaces",
            }],
        ),
    ]


def tenant_guardrails(platform: Platform, tenant: Tenant, index: int) -> list[Guardrail]:
    """Return the guardrails that carry one tenant's own limits."""
    path: FieldPath = ("spec", "tenants", index)
    result: list[Guardrail] = []
    if tenant.allowed_registries:
        prefixes = sorted(_registry_prefix(registry) for registry in tenant.allowed_registries)
        result.append(Guardrail(
            name=f"gpuplane-{tenant.name}-registries",
            description=f"Images of tenant {tenant.name} come from its allowed registries.",
            rules=_POD_RULES,
            variables=[*_POD_VARIABLES, {"name": "allowed", "expression": _cel_list(prefixes)}],
            validations=[{
                "expression": "variables.containers.all(c, variables.allowed.exists(p, c.image.startsWith(p)))",
                "message": f"images must come from one of {', '.join(prefixes)}",
            }],
            tenant=tenant.name, origin=(*path, "allowedRegistries"),
        ))
    if tenant.max_gpus_per_pod is not None:
        resource = gpu_resource(platform.spec.cluster(tenant.cluster))
        key = _cel_string(resource)
        # Extended resources must be set in limits (requests default to them),
        # and are whole numbers, so int() of the quantity string is exact.
        result.append(Guardrail(
            name=f"gpuplane-{tenant.name}-gpus-per-pod",
            description=f"A pod of tenant {tenant.name} asks for at most {tenant.max_gpus_per_pod} GPUs.",
            rules=_POD_RULES,
            variables=[*_POD_VARIABLES, {"name": "gpus", "expression": (
                f"variables.podSpec.containers.map(c, has(c.resources) && has(c.resources.limits) && "
                f"{key} in c.resources.limits ? int(c.resources.limits[{key}]) : 0).sum()")}],
            validations=[{
                "expression": f"variables.gpus <= {tenant.max_gpus_per_pod}",
                "message": f"a pod may use at most {tenant.max_gpus_per_pod} {resource}",
            }],
            tenant=tenant.name, origin=(*path, "maxGpusPerPod"),
        ))
    if tenant.allowed_priority_classes:
        allowed = sorted(tenant.allowed_priority_classes)
        result.append(Guardrail(
            name=f"gpuplane-{tenant.name}-priority-classes",
            description=f"Pods of tenant {tenant.name} use one of its allowed priority classes.",
            rules=_POD_RULES,
            variables=[*_POD_VARIABLES, {"name": "allowed", "expression": _cel_list(allowed)}],
            validations=[{
                "expression": ("!has(variables.podSpec.priorityClassName) || "
                               "variables.podSpec.priorityClassName in variables.allowed"),
                "message": f"priorityClassName must be one of {', '.join(allowed)}",
            }],
            tenant=tenant.name, origin=(*path, "allowedPriorityClasses"),
        ))
    return result


def _registry_prefix(registry: str) -> str:
    """End a registry with '/', so that ``ghcr.io/lab`` does not also allow ``ghcr.io/lab-evil``."""
    return registry if registry.endswith("/") else registry + "/"


def guardrail_manifests(guardrail: Guardrail, engine: PolicyEngine, *, cluster: str,
                        document: Document | None) -> list[Manifest]:
    """Render one guardrail for ``engine``: a policy and binding, or one Kyverno policy."""
    metadata = {"name": guardrail.name, "labels": dict(MANAGED_BY),
                "annotations": {"gpuplane.dev/description": guardrail.description}}
    if engine == "vap":
        policy_spec: dict[str, Any] = {"failurePolicy": "Fail",
                                       "matchConstraints": {"resourceRules": guardrail.rules}}
    else:
        policy_spec = {"validationActions": ["Deny"], "failurePolicy": "Fail",
                       "matchConstraints": {"resourceRules": guardrail.rules,
                                            "namespaceSelector": guardrail.namespace_selector()},
                       "evaluation": {"background": {"enabled": True}}}
    if guardrail.match_conditions:
        policy_spec["matchConditions"] = guardrail.match_conditions
    if guardrail.variables:
        policy_spec["variables"] = guardrail.variables
    policy_spec["validations"] = guardrail.validations
    if engine == "kyverno":
        documents = [{"apiVersion": "policies.kyverno.io/v1", "kind": "ValidatingPolicy",
                      "metadata": metadata, "spec": policy_spec}]
    else:
        binding_metadata = {"name": guardrail.name, "labels": dict(MANAGED_BY)}
        documents = [
            {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
             "metadata": metadata, "spec": policy_spec},
            {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
             "metadata": binding_metadata,
             "spec": {"policyName": guardrail.name, "validationActions": ["Deny"],
                      "matchResources": {"namespaceSelector": guardrail.namespace_selector()}}},
        ]
    return [Manifest(data=data, document=document, path=guardrail.origin, cluster=cluster, generated=True)
            for data in documents]
