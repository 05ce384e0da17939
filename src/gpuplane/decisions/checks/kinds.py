"""Rule S2: objects of kinds that no schema or rule covers, so nothing in them is checked.

An object is checked when gpuplane has a schema for its apiVersion and kind
(the Kubernetes kinds of ``--kubernetes-version``, Kueue v1beta2, Kyverno
ValidatingPolicy), or when a rule reads its kind. Everything else, such as
another project's custom resources or a misspelt kind, is reported once per
kind with a count, so that a clean result is not mistaken for a checked one.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from gpuplane.decisions.checks.base import KUBEFLOW_KINDS, CheckInput, Finding, Rule, Severity
from gpuplane.model.platform.rendered import Manifest
from gpuplane.model.validation import has_schema

__all__ = ["KIND_RULES", "is_checked"]

# Kinds that rules read in any version of their group, schema or not.
_RULE_KINDS: dict[str, frozenset[str]] = {
    "kueue.x-k8s.io": frozenset({"ResourceFlavor", "ClusterQueue", "Cohort", "LocalQueue", "WorkloadPriorityClass"}),
    "jobset.x-k8s.io": frozenset({"JobSet"}),
    "leaderworkerset.x-k8s.io": frozenset({"LeaderWorkerSet"}),
    "kubeflow.org": KUBEFLOW_KINDS,
}
# A kustomization is a build file, not an object: every rendered folder has them, so they are
# skipped without a warning, and not counted as checked.
_BUILD_FILES = {"kustomize.config.k8s.io": frozenset({"Kustomization"})}
# Kinds a misspelt kind is compared with, to suggest the one that was meant.
_COMMON_KINDS = (
    "Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Service", "ConfigMap",
    "Secret", "ServiceAccount", "Namespace", "Node", "PersistentVolumeClaim", "PersistentVolume", "StorageClass",
    "Ingress", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodDisruptionBudget", "PriorityClass", "Role",
    "RoleBinding", "ClusterRole", "ClusterRoleBinding", "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding", "DeviceClass", "ResourceSlice", "ResourceClaim", "ResourceClaimTemplate",
    "HorizontalPodAutoscaler", "CustomResourceDefinition",
    *sorted(kind for kinds in _RULE_KINDS.values() for kind in kinds),
)
_CHECKED = ("the kinds of Kubernetes {version}, Kueue v1beta2 (ResourceFlavor, ClusterQueue, Cohort, LocalQueue, "
            "WorkloadPriorityClass), Kyverno ValidatingPolicy, and the pod templates of JobSet, LeaderWorkerSet "
            "and Kubeflow training jobs")


def is_checked(manifest: Manifest, kubernetes_version: str) -> bool:
    """Tell whether a schema or a rule covers ``manifest``'s apiVersion and kind."""
    if not manifest.kind or not manifest.api_version:
        return False
    group = manifest.api_version.rpartition("/")[0]
    if manifest.kind in _RULE_KINDS.get(group, frozenset()):
        return True
    return has_schema(manifest.api_version, manifest.kind, kubernetes_version)


def _is_build_file(manifest: Manifest) -> bool:
    return manifest.kind in _BUILD_FILES.get(manifest.api_version.rpartition("/")[0], frozenset())


def _unchecked_kinds(check: CheckInput) -> Iterator[Finding]:
    groups: dict[tuple[str, str], list[Manifest]] = {}
    for manifest in check.manifests:
        if not (manifest.generated or _is_build_file(manifest) or is_checked(manifest, check.kubernetes_version)):
            groups.setdefault((manifest.kind, manifest.api_version), []).append(manifest)
    for (kind, api_version), manifests in sorted(groups.items()):
        count = len(manifests)
        objects = f"{count} object{'' if count == 1 else 's'}"
        checked = _CHECKED.format(version=check.kubernetes_version)
        if not kind or not api_version:
            yield S2.finding(f"{objects} in the input {'has' if count == 1 else 'have'} no apiVersion or kind, "
                             f"so {'it is' if count == 1 else 'they are'} not checked. gpuplane checks {checked}.",
                             "Add apiVersion and kind, or move files that hold no Kubernetes objects out of the "
                             "checked folder.", manifests[0].locate(), manifest=manifests[0])
            continue
        yield S2.finding(f"{objects} of kind {kind} ({api_version}) {'is' if count == 1 else 'are'} not checked: "
                         f"no schema or rule covers this kind. gpuplane checks {checked}.",
                         _unknown_kind_fix(kind), manifests[0].locate(("kind",)), manifest=manifests[0])


def _unknown_kind_fix(kind: str) -> str:
    exact = [known for known in _COMMON_KINDS if known.lower() == kind.lower()]
    guesses = exact or difflib.get_close_matches(kind, _COMMON_KINDS, n=1, cutoff=0.8)
    if guesses:
        return f"If you meant {guesses[0]}, correct the kind. Otherwise check these objects with their own tools."
    return "If the kind is misspelt, correct it. Otherwise check these objects with their own tools."


S2 = Rule("S2", "Objects of a kind that no schema or rule covers", Severity.WARNING, _unchecked_kinds)

KIND_RULES = [S2]
