"""Builders for Kueue objects, trace jobs and scenarios used by the Kueue tests."""

from __future__ import annotations

from typing import Any

from gpuplane.model.manifests import ObjectSet
from gpuplane.model.objects import kueue as api
from gpuplane.model.objects.base import TypedObject
from gpuplane.model.objects.core import Namespace, Node, PriorityClass
from gpuplane.model.scenario import Scenario
from gpuplane.model.trace import Trace, TraceJob, TracePodSet
from gpuplane.sim.simulator import SimulationResult, Simulator

GPU = "nvidia.com/gpu"

_MODELS: dict[str, type[TypedObject]] = {
    "ResourceFlavor": api.ResourceFlavor,
    "ClusterQueue": api.ClusterQueue,
    "Cohort": api.Cohort,
    "LocalQueue": api.LocalQueue,
    "WorkloadPriorityClass": api.WorkloadPriorityClass,
    "Workload": api.Workload,
    "Node": Node,
    "Namespace": Namespace,
    "PriorityClass": PriorityClass,
}


def object_set(*documents: dict[str, Any]) -> ObjectSet:
    """Validate documents into typed objects; each names its kind."""
    objects = ObjectSet()
    for document in documents:
        body = {key: value for key, value in document.items() if key not in ("kind", "apiVersion")}
        objects.add(_MODELS[document["kind"]].model_validate(body))
    return objects


def flavor(name: str, **spec: Any) -> dict[str, Any]:
    return {"kind": "ResourceFlavor", "metadata": {"name": name}, "spec": spec}


def quota(nominal: int, borrowing: int | None = None, lending: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"nominalQuota": nominal}
    if borrowing is not None:
        body["borrowingLimit"] = borrowing
    if lending is not None:
        body["lendingLimit"] = lending
    return body


def cluster_queue(name: str, flavors: dict[str, dict[str, Any]], *, cohort: str | None = None,
                  resources: tuple[str, ...] = (GPU,), **spec: Any) -> dict[str, Any]:
    """A ClusterQueue with one resource group; ``flavors`` maps flavor -> resource -> quota (int or dict)."""
    group = {"coveredResources": list(resources), "flavors": [
        {"name": name_, "resources": [{"name": res, **(q if isinstance(q, dict) else quota(q))}
                                      for res, q in per_resource.items()]}
        for name_, per_resource in flavors.items()]}
    body: dict[str, Any] = {"resourceGroups": [group], "namespaceSelector": {}, **spec}
    if cohort is not None:
        body["cohortName"] = cohort
    return {"kind": "ClusterQueue", "metadata": {"name": name}, "spec": body}


def local_queue(key: str, cluster_queue_name: str, **spec: Any) -> dict[str, Any]:
    namespace, name = key.split("/")
    return {"kind": "LocalQueue", "metadata": {"name": name, "namespace": namespace},
            "spec": {"clusterQueue": cluster_queue_name, **spec}}


def node(name: str, gpus: int = 8, *, labels: dict[str, str] | None = None, extra: dict[str, str] | None = None,
         **spec: Any) -> dict[str, Any]:
    allocatable = {"cpu": "64", "memory": "512Gi", GPU: str(gpus), "pods": "110", **(extra or {})}
    return {"kind": "Node", "metadata": {"name": name, "labels": labels or {}}, "spec": spec,
            "status": {"allocatable": allocatable}}


def namespace(name: str, **labels: str) -> dict[str, Any]:
    return {"kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def job(job_id: str, submit: float, duration: float, queue: str, gpus: int = 1, *, pods: int = 1,
        priority_class: str | None = None, min_pods: int | None = None,
        requests: dict[str, int] | None = None) -> TraceJob:
    per_pod = {GPU: gpus} if requests is None else requests
    return TraceJob(id=job_id, submit_time=submit, duration=duration, tenant=queue.split("/", maxsplit=1)[0],
                    pod_sets=(TracePodSet("main", pods, per_pod, min_pods),), priority_class=priority_class,
                    queue=queue)


def trace(*jobs: TraceJob) -> Trace:
    return Trace(jobs=tuple(sorted(jobs, key=lambda j: (j.submit_time, j.id))), source="test")


def scenario(**kueue: Any) -> Scenario:
    return Scenario.model_validate({"spec": {"kueue": kueue}})


def simulate(objects: ObjectSet, jobs: Trace, run_scenario: Scenario | None = None) -> SimulationResult:
    return Simulator(objects, jobs, run_scenario or scenario(), check_invariants=True).run()


def runs_by_id(result: SimulationResult) -> dict[str, Any]:
    return {run.job.id: run for run in result.runs}
