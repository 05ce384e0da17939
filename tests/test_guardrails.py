"""Guardrail CEL: the rendered expressions accept good objects and reject bad ones.

The expressions are evaluated with the common-expression-language package;
Kubernetes' CEL list extension ``sum()`` is registered as a function here.
"""

from __future__ import annotations

from typing import Any

import cel
import pytest

from builders import base_platform, tenant
from gpuplane.model.platform.guardrails import Guardrail, guardrail_manifests, platform_guardrails, tenant_guardrails
from gpuplane.model.platform.spec import Platform


def _platform() -> Platform:
    platform = base_platform()
    tenant(platform)["maxGpusPerPod"] = 4
    return Platform.model_validate(platform)


def _guardrail(name: str) -> Guardrail:
    platform = _platform()
    rails = platform_guardrails() + tenant_guardrails(platform, platform.spec.tenants[0], 0)
    return next(rail for rail in rails if rail.name == name)


def _admits(rail: Guardrail, obj: dict[str, Any]) -> bool:
    context = cel.Context()
    context.add_function("sum", sum)
    context.add_variable("object", obj)
    for condition in rail.match_conditions:
        if not cel.evaluate(condition["expression"], context):
            return True
    variables: dict[str, Any] = {}
    for variable in rail.variables:
        context.add_variable("variables", variables)
        variables[variable["name"]] = cel.evaluate(variable["expression"], context)
    context.add_variable("variables", variables)
    return all(cel.evaluate(validation["expression"], context) for validation in rail.validations)


def _pod(image: str = "registry.example/team/train:1", gpus: int = 1, **extra: Any) -> dict[str, Any]:
    container = {"name": "main", "image": image,
                 "resources": {"requests": {"cpu": "1", "memory": "1Gi"},
                               "limits": {"memory": "1Gi", "nvidia.com/gpu": str(gpus)}}}
    container.update(extra)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [container]}}


def _job(pod: dict[str, Any], labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "labels": labels or {}},
            "spec": {"template": {"spec": pod["spec"]}}}


def test_queue_name_required_on_jobs() -> None:
    rail = _guardrail("gpuplane-require-queue-name")
    assert _admits(rail, _job(_pod(), {"kueue.x-k8s.io/queue-name": "default"}))
    assert not _admits(rail, _job(_pod()))
    assert not _admits(rail, _job(_pod(), {"kueue.x-k8s.io/queue-name": ""}))


def test_queue_name_skips_jobs_of_a_jobset() -> None:
    rail = _guardrail("gpuplane-require-queue-name")
    job = _job(_pod())
    job["metadata"]["ownerReferences"] = [{"kind": "JobSet", "name": "js"}]
    assert _admits(rail, job)


def test_queue_name_is_not_required_on_pods() -> None:
    rail = _guardrail("gpuplane-require-queue-name")
    assert all("pods" not in rule["resources"] for rule in rail.rules)


def test_requests_and_limits_required() -> None:
    rail = _guardrail("gpuplane-require-requests-limits")
    assert _admits(rail, _pod())
    bare = _pod()
    bare["spec"]["containers"][0]["resources"] = {"limits": {"memory": "1Gi"}}
    assert not _admits(rail, bare)
    no_limit = _pod()
    del no_limit["spec"]["containers"][0]["resources"]["limits"]
    assert not _admits(rail, no_limit)


def test_privileged_denied() -> None:
    rail = _guardrail("gpuplane-deny-privileged")
    assert _admits(rail, _pod())
    assert _admits(rail, _pod(securityContext={"privileged": False}))
    assert not _admits(rail, _pod(securityContext={"privileged": True}))
    assert not _admits(rail, _job(_pod(securityContext={"privileged": True})))


def test_registries_allowed_by_prefix() -> None:
    rail = _guardrail("gpuplane-team-registries")
    assert _admits(rail, _pod())
    assert not _admits(rail, _pod(image="docker.io/library/nginx"))
    assert not _admits(rail, _pod(image="registry.example/team-evil/x:1"))
    pod = _pod()
    pod["spec"]["initContainers"] = [{"name": "init", "image": "docker.io/busybox"}]
    assert not _admits(rail, pod)


@pytest.mark.parametrize(("gpus", "admitted"), [(1, True), (4, True), (5, False)])
def test_gpus_per_pod_capped(gpus: int, admitted: bool) -> None:
    rail = _guardrail("gpuplane-team-gpus-per-pod")
    assert _admits(rail, _pod(gpus=gpus)) is admitted
    assert _admits(rail, _job(_pod(gpus=gpus))) is admitted


def test_gpus_summed_over_containers() -> None:
    rail = _guardrail("gpuplane-team-gpus-per-pod")
    pod = _pod(gpus=3)
    pod["spec"]["containers"].append(dict(pod["spec"]["containers"][0], name="second"))
    assert not _admits(rail, pod)


def test_priority_class_from_allowed_set() -> None:
    rail = _guardrail("gpuplane-team-priority-classes")
    pod = _pod()
    assert _admits(rail, pod)
    pod["spec"]["priorityClassName"] = "research"
    assert _admits(rail, pod)
    pod["spec"]["priorityClassName"] = "system-cluster-critical"
    assert not _admits(rail, pod)


def test_vap_binding_selects_tenant_namespaces() -> None:
    rail = _guardrail("gpuplane-team-registries")
    policy, binding = guardrail_manifests(rail, "vap", cluster="lab", document=None)
    assert binding.data["spec"]["policyName"] == policy.data["metadata"]["name"]
    assert binding.data["spec"]["validationActions"] == ["Deny"]
    assert binding.data["spec"]["matchResources"]["namespaceSelector"] == {
        "matchLabels": {"gpuplane.dev/tenant": "team"}}


def test_kyverno_policy_carries_same_cel() -> None:
    rail = _guardrail("gpuplane-deny-privileged")
    [policy] = guardrail_manifests(rail, "kyverno", cluster="lab", document=None)
    assert policy.data["apiVersion"] == "policies.kyverno.io/v1"
    assert policy.data["kind"] == "ValidatingPolicy"
    assert policy.data["spec"]["validations"] == rail.validations
    assert policy.data["spec"]["validationActions"] == ["Deny"]
    assert policy.data["spec"]["matchConstraints"]["namespaceSelector"] == {
        "matchExpressions": [{"key": "gpuplane.dev/tenant", "operator": "Exists"}]}
