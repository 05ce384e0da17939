"""Each lint rule fires on a spec or manifest made to break it, and stays quiet on a clean one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from builders import EXAMPLES, base_platform, tenant, write_manifests, write_spec
from gpuplane.decisions.checks import RULES, Finding
from gpuplane.surfaces.check import check_path

Breaker = Callable[[dict[str, Any]], None]


def _findings(path: Path) -> list[Finding]:
    return check_path(path).findings


def _rules(path: Path) -> set[str]:
    return {finding.rule for finding in _findings(path)}


# --- spec-based cases: each breaks the clean base spec in one way ----------------------------------


def _gpu_quota_without_prefix(p: dict[str, Any]) -> None:
    tenant(p)["namespaceQuota"] = {"hard": {"nvidia.com/gpu": 8}}


def _overcommit(p: dict[str, Any]) -> None:
    tenant(p)["quotas"][0]["resources"]["nvidia.com/gpu"]["nominalQuota"] = 32


def _namespace_quota_below_queue(p: dict[str, Any]) -> None:
    tenant(p)["namespaceQuota"] = {"derive": False, "hard": {"requests.nvidia.com/gpu": 4}}


def _quota_without_defaults(p: dict[str, Any]) -> None:
    tenant(p)["containerDefaults"] = {"defaultRequest": {}}


def _limit_below_request(p: dict[str, Any]) -> None:
    tenant(p)["containerDefaults"] = {"defaultRequest": {"cpu": 1, "memory": "2Gi"}, "default": {"memory": "1Gi"}}


def _borrowing_without_cohort(p: dict[str, Any]) -> None:
    del tenant(p)["cohort"]
    tenant(p)["quotas"][0]["resources"]["nvidia.com/gpu"]["borrowingLimit"] = 4


def _lending_above_nominal(p: dict[str, Any]) -> None:
    tenant(p)["quotas"][0]["resources"]["nvidia.com/gpu"]["lendingLimit"] = 16


def _pdb_never_evicts(p: dict[str, Any]) -> None:
    tenant(p)["serving"][0]["disruptionBudget"] = {"minAvailable": "100%",
                                                   "unhealthyPodEvictionPolicy": "AlwaysAllow"}


def _pdb_min_equals_replicas(p: dict[str, Any]) -> None:
    tenant(p)["serving"][0]["disruptionBudget"] = {"minAvailable": 2, "unhealthyPodEvictionPolicy": "AlwaysAllow"}


def _pdb_percent_rounds_up_to_all(p: dict[str, Any]) -> None:
    # ceil(60% of 2) = 2 pods must stay healthy, so none may go.
    tenant(p)["serving"][0]["disruptionBudget"] = {"minAvailable": "60%",
                                                   "unhealthyPodEvictionPolicy": "AlwaysAllow"}


def _pdb_on_training_pods(p: dict[str, Any]) -> None:
    tenant(p)["disruptionBudgets"] = [{"name": "train", "matchLabels": {"gpuplane.dev/job-template": "train"},
                                       "maxUnavailable": "50%", "unhealthyPodEvictionPolicy": "AlwaysAllow"}]


def _two_pdbs_same_pods(p: dict[str, Any]) -> None:
    tenant(p)["disruptionBudgets"] = [{"name": "web-extra", "matchLabels": {"app.kubernetes.io/name": "web"},
                                       "minAvailable": 1, "unhealthyPodEvictionPolicy": "AlwaysAllow"}]


def _pdb_default_unhealthy_policy(p: dict[str, Any]) -> None:
    del tenant(p)["serving"][0]["disruptionBudget"]["unhealthyPodEvictionPolicy"]


def _grace_below_checkpoint(p: dict[str, Any]) -> None:
    tenant(p)["jobTemplates"][0]["terminationGracePeriodSeconds"] = 60


def _default_grace_below_checkpoint(p: dict[str, Any]) -> None:
    del tenant(p)["jobTemplates"][0]["terminationGracePeriodSeconds"]


def _crd_conflict(p: dict[str, Any]) -> None:
    tenant(p)["crds"] = {"kubeflow.org": "v1"}
    p["spec"]["tenants"].append({"name": "partner", "crds": {"kubeflow.org": "v2beta1"}})


def _template_over_guardrail(p: dict[str, Any]) -> None:
    tenant(p)["maxGpusPerPod"] = 4


def _template_outside_registries(p: dict[str, Any]) -> None:
    tenant(p)["jobTemplates"][0]["image"] = "docker.io/pytorch/pytorch:2.4"


def _pod_larger_than_any_node(p: dict[str, Any]) -> None:
    tenant(p)["maxGpusPerPod"] = 16
    tenant(p)["jobTemplates"][0]["gpusPerPod"] = 16


def _device_class_without_devices(p: dict[str, Any]) -> None:
    p["spec"]["clusters"][0]["nodePools"][0].pop("gpu")
    tenant(p)["allowedDeviceClasses"] = ["gpu.nvidia.com"]
    tenant(p)["jobTemplates"][0]["gpusPerPod"] = 0
    tenant(p)["serving"][0]["gpusPerReplica"] = 0


def _undefined_priority_class(p: dict[str, Any]) -> None:
    tenant(p)["allowedPriorityClasses"] = ["research", "urgent"]


SPEC_CASES: list[tuple[str, Breaker]] = [
    ("Q1", _gpu_quota_without_prefix),
    ("Q4", _overcommit),
    ("Q5", _namespace_quota_below_queue),
    ("Q6", _quota_without_defaults),
    ("L1", _limit_below_request),
    ("K1", _borrowing_without_cohort),
    ("K2", _lending_above_nominal),
    ("P1", _pdb_never_evicts),
    ("P1", _pdb_min_equals_replicas),
    ("P1", _pdb_percent_rounds_up_to_all),
    ("P2", _pdb_on_training_pods),
    ("P3", _two_pdbs_same_pods),
    ("P4", _pdb_default_unhealthy_policy),
    ("T1", _grace_below_checkpoint),
    ("T1", _default_grace_below_checkpoint),
    ("C1", _crd_conflict),
    ("G1", _template_over_guardrail),
    ("G1", _template_outside_registries),
    ("D1", _pod_larger_than_any_node),
    ("D1", _device_class_without_devices),
    ("R1", _undefined_priority_class),
]


@pytest.fixture(scope="module")
def clean_spec_rules(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    return _rules(write_spec(tmp_path_factory.mktemp("clean"), base_platform()))


def test_clean_spec_has_no_findings(clean_spec_rules: set[str]) -> None:
    assert clean_spec_rules == set()


@pytest.mark.parametrize(("rule", "breaker"), SPEC_CASES, ids=[f"{r}-{b.__name__.strip('_')}" for r, b in SPEC_CASES])
def test_spec_rule_fires(rule: str, breaker: Breaker, tmp_path: Path) -> None:
    platform = base_platform()
    breaker(platform)
    spec = write_spec(tmp_path, platform)
    findings = [f for f in _findings(spec) if f.rule == rule]
    assert findings, f"{rule} did not fire"
    for finding in findings:
        assert finding.location.source == str(spec)
        assert finding.location.line is not None
        assert finding.fix


def test_quota_finding_points_at_spec_key(tmp_path: Path) -> None:
    platform = base_platform()
    _gpu_quota_without_prefix(platform)
    spec = write_spec(tmp_path, platform)
    [finding] = [f for f in _findings(spec) if f.rule == "Q1"]
    line = next(n for n, text in enumerate(spec.read_text().splitlines(), 1) if "nvidia.com/gpu: 8" in text)
    assert finding.location.line == line
    assert finding.location.field == "spec.tenants[0].namespaceQuota.hard.nvidia.com/gpu"
    assert "requests.nvidia.com/gpu" in finding.fix


def test_vcluster_tenant_may_use_other_crd_version(tmp_path: Path) -> None:
    platform = base_platform()
    _crd_conflict(platform)
    platform["spec"]["tenants"][1]["isolation"] = "vcluster"
    assert "C1" not in _rules(write_spec(tmp_path, platform))


def test_integer_min_available_on_training_pods_is_fine(tmp_path: Path) -> None:
    platform = base_platform()
    tenant(platform)["disruptionBudgets"] = [{"name": "train", "minAvailable": 1, "unhealthyPodEvictionPolicy":
                                              "AlwaysAllow", "matchLabels": {"gpuplane.dev/job-template": "train"}}]
    assert "P2" not in _rules(write_spec(tmp_path, platform))


def test_pdb_percent_that_leaves_room_is_fine(tmp_path: Path) -> None:
    platform = base_platform()
    tenant(platform)["serving"][0]["replicas"] = 7
    tenant(platform)["serving"][0]["disruptionBudget"] = {"minAvailable": "50%",
                                                          "unhealthyPodEvictionPolicy": "AlwaysAllow"}
    assert "P1" not in _rules(write_spec(tmp_path, platform))


# --- manifest-based cases ---------------------------------------------------------------------------


def _quota(hard: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q", "namespace": "team"},
            "spec": {"hard": hard, **spec}}


def _queue(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ClusterQueue", "metadata": {"name": "team"},
            "spec": {"resourceGroups": [{"coveredResources": ["nvidia.com/gpu"], "flavors": [
                {"name": "gpu", "resources": [{"name": "nvidia.com/gpu", "nominalQuota": 8}]}]}], **spec}}


def _deny_all() -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "deny", "namespace": "team"},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}


def _dns(peers: list[dict[str, Any]], protocols: tuple[str, ...] = ("UDP", "TCP")) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "dns", "namespace": "team"},
            "spec": {"podSelector": {}, "policyTypes": ["Egress"],
                     "egress": [{"to": peers, "ports": [{"protocol": p, "port": 53} for p in protocols]}]}}


_KUBE_DNS = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
             "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}
_SPLIT_DNS = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}},
              {"podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}]

MANIFEST_CASES: list[tuple[str, list[dict[str, Any]], list[dict[str, Any]]]] = [
    ("Q1", [_quota({"limits.nvidia.com/gpu": 4})], [_quota({"requests.nvidia.com/gpu": 4})]),
    ("Q2", [_quota({"requests.gpu": 4})], [_quota({"requests.nvidia.com/gpu": 4, "requests.hugepages-2Mi": "1Gi"})]),
    ("Q2", [_quota({"gpus": 4})], [_quota({"count/jobs.batch": 4, "gpu.deviceclass.resource.k8s.io/devices": 2})]),
    ("Q3", [_quota({"pods": 4}, scopes=["Terminating", "NotTerminating"])],
     [_quota({"pods": 4}, scopes=["BestEffort"])]),
    ("Q3", [_quota({"requests.cpu": 4}, scopes=["BestEffort"])], [_quota({"pods": 4}, scopes=["BestEffort"])]),
    ("Q3", [_quota({"pods": 4}, scopeSelector={"matchExpressions": [{"scopeName": "PriorityClass",
                                                                    "operator": "In"}]})],
     [_quota({"requests.nvidia.com/gpu": 4}, scopeSelector={"matchExpressions": [
         {"scopeName": "PriorityClass", "operator": "In", "values": ["research"]}]})]),
    ("K3", [_queue()], [_queue(namespaceSelector={})]),
    ("K4", [_queue(namespaceSelector={}), {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "LocalQueue",
                                           "metadata": {"name": "q", "namespace": "team"},
                                           "spec": {"clusterQueue": "missing"}}],
     [_queue(namespaceSelector={}), {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "LocalQueue",
                                     "metadata": {"name": "q", "namespace": "team"},
                                     "spec": {"clusterQueue": "team"}}]),
    ("N1", [_deny_all()], [_deny_all(), _dns([_KUBE_DNS])]),
    ("N1", [_deny_all(), _dns([_KUBE_DNS], ("UDP",))], [_deny_all(), _dns([_KUBE_DNS])]),
    ("N1", [_deny_all(), _dns(_SPLIT_DNS)], [_deny_all(), _dns([_KUBE_DNS])]),
    ("R1", [{"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "top"},
             "value": 2000000000}],
     [{"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "top"}, "value": 1000}]),
    ("S1", [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}, "spec": {"bogus": 1}}],
     [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}]),
    ("S2", [{"apiVersion": "apps/v1", "kind": "Deploymnet", "metadata": {"name": "web", "namespace": "team"}}],
     [{"apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet", "metadata": {"name": "j", "namespace": "team"}},
      {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": []}]),
    ("L1", [{"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "d", "namespace": "team"},
             "spec": {"limits": [{"type": "Container", "default": {"nvidia.com/gpu": 1}}]}}],
     [{"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "d", "namespace": "team"},
       "spec": {"limits": [{"type": "Container", "default": {"memory": "1Gi"}}]}}]),
]


@pytest.mark.parametrize(("rule", "bad", "good"), MANIFEST_CASES,
                         ids=[f"{case[0]}-{index}" for index, case in enumerate(MANIFEST_CASES)])
def test_manifest_rule_fires(rule: str, bad: list[dict[str, Any]], good: list[dict[str, Any]], tmp_path: Path) -> None:
    bad_findings = [f for f in _findings(write_manifests(tmp_path / "bad", bad)) if f.rule == rule]
    assert bad_findings, f"{rule} did not fire"
    assert all(f.location.source and f.location.line for f in bad_findings)
    assert rule not in _rules(write_manifests(tmp_path / "good", good))


def test_yaml_1_1_boolean_label_fires(tmp_path: Path) -> None:
    (tmp_path / "ns.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n  labels:\n"
                                      "    gpu: on\n    mode: '0755'\n")
    [finding] = [f for f in _findings(tmp_path) if f.rule == "Y1"]
    assert finding.location.line == 6
    assert "gpu" in finding.message


def test_quoted_labels_are_fine(tmp_path: Path) -> None:
    (tmp_path / "ns.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n  labels:\n"
                                      "    gpu: 'on'\n")
    assert "Y1" not in _rules(tmp_path)


def test_every_rule_has_a_case() -> None:
    covered = {rule for rule, _ in SPEC_CASES} | {case[0] for case in MANIFEST_CASES} | {"Y1"}
    assert {rule.id for rule in RULES} == covered


def test_university_example_is_clean(tmp_path: Path) -> None:
    findings = _findings(EXAMPLES / "university" / "platform.yaml")
    assert [f for f in findings if f.severity.value != "info"] == []


def _cohort_partner(platform: dict[str, Any], flavor: str, gpus: int) -> None:
    platform["spec"]["tenants"].append({"name": "partner", "cohort": "all", "quotas": [
        {"flavor": flavor, "resources": {"nvidia.com/gpu": {"nominalQuota": gpus}}}]})


def test_queue_ceiling_stops_at_cohort_total(tmp_path: Path) -> None:
    platform = base_platform()
    platform["spec"]["clusters"][0]["nodePools"].append(
        {"name": "gpu-b", "count": 2, "cpu": 64, "memory": "512Gi", "gpu": {"count": 8}})
    tenant(platform)["quotas"] = [
        {"flavor": "gpu", "resources": {"nvidia.com/gpu": {"nominalQuota": 8, "borrowingLimit": 4}}},
        {"flavor": "gpu-b", "resources": {"nvidia.com/gpu": {"nominalQuota": 0, "borrowingLimit": 8}}}]
    _cohort_partner(platform, "gpu-b", 16)
    assert "Q5" not in _rules(write_spec(tmp_path, platform))


def test_unlimited_borrowing_reaches_cohort_total(tmp_path: Path) -> None:
    platform = base_platform()
    _cohort_partner(platform, "gpu", 8)
    tenant(platform)["namespaceQuota"] = {"derive": False, "hard": {"requests.nvidia.com/gpu": 12}}
    [finding] = [f for f in _findings(write_spec(tmp_path, platform)) if f.rule == "Q5"]
    assert finding.message.startswith("ClusterQueue team can admit 16 nvidia.com/gpu for namespace team")
