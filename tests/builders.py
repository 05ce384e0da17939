"""Small Platform specs and manifest folders for tests, written as files the way users write them."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from gpuplane.model.yamlio import dump_documents

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def base_platform() -> dict[str, Any]:
    """Return one cluster with two 8-GPU nodes and one tenant in a cohort: no rule fires on it."""
    return {
        "apiVersion": "gpuplane.dev/v1alpha1",
        "kind": "Platform",
        "metadata": {"name": "test"},
        "spec": {
            "clusters": [{"name": "lab", "nodePools": [
                {"name": "gpu", "count": 2, "cpu": 64, "memory": "512Gi", "gpu": {"count": 8}}]}],
            "cohorts": [{"name": "all"}],
            "priorityClasses": [{"name": "research", "value": 1000}],
            "tenants": [{
                "name": "team",
                "cohort": "all",
                "owners": [{"kind": "Group", "name": "team"}],
                "priorityClass": "research",
                "allowedPriorityClasses": ["research"],
                "allowedRegistries": ["registry.example/team"],
                "maxGpusPerPod": 8,
                "quotas": [{"flavor": "gpu", "resources": {
                    "cpu": {"nominalQuota": 64}, "memory": {"nominalQuota": "512Gi"},
                    "nvidia.com/gpu": {"nominalQuota": 8}}}],
                "serving": [{"name": "web", "replicas": 2, "image": "registry.example/team/web:1",
                             "disruptionBudget": {"maxUnavailable": 1,
                                                  "unhealthyPodEvictionPolicy": "AlwaysAllow"}}],
                "jobTemplates": [{"name": "train", "image": "registry.example/team/train:1", "gpusPerPod": 8,
                                  "cpu": 16, "memory": "64Gi", "terminationGracePeriodSeconds": 300,
                                  "checkpointWriteSeconds": 120}],
            }],
        },
    }


def tenant(platform: dict[str, Any], index: int = 0) -> dict[str, Any]:
    return platform["spec"]["tenants"][index]  # type: ignore[no-any-return]


def write_spec(folder: Path, platform: dict[str, Any], name: str = "platform.yaml") -> Path:
    path = folder / name
    path.write_text(dump_documents([platform]), encoding="utf-8")
    return path


def write_manifests(folder: Path, documents: list[dict[str, Any]], name: str = "objects.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(dump_documents(documents), encoding="utf-8")
    return folder


def copy_of(platform: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(platform)
