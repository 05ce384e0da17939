"""Results of a simulation: one record per job and a summary per ClusterQueue and cluster.

Definitions (all times in seconds, GPU figures in the accounting resource):

- wait: from submission to the first time all of a job's pods ran; a job
  that never started counts as waiting until the end of the run (a lower
  bound), so queues that never drain still show;
- GPU-hours: requested GPUs times running time of finished jobs; demand
  GPU-hours count every job of the trace, finished or not;
- borrowed GPU-hours: the time integral of a ClusterQueue's usage above its
  nominal quota (quota held, whether or not the pods were placed);
- lost GPU-hours: GPUs times running time thrown away when a running job
  was preempted or evicted (jobs restart from the beginning);
- utilisation: GPU-seconds held by bound pods over capacity times the
  simulated span;
- admitted but not yet placed: jobs that hold quota while some of their pods
  wait for a node (fragmentation);
- busy device-hours (DRA): time integral of the devices pods hold, per
  device model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from gpuplane.decisions.devices.pools import DeviceID
from gpuplane.sim.records import JobRun, JobState, SimulationResult

__all__ = ["device_summary", "job_records", "summarize"]

HOUR = 3600.0


def _percentiles(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "max": None, "mean": None}
    array = np.asarray(values, dtype=float)
    return {
        "p50": float(np.percentile(array, 50)),
        "p95": float(np.percentile(array, 95)),
        "max": float(array.max()),
        "mean": float(array.mean()),
    }


def _wait(run: JobRun) -> float | None:
    if run.first_started is None:
        return None
    return run.first_started - run.job.submit_time


def _wait_so_far(run: JobRun, end: float) -> float:
    """The wait of a job that started, or how long it had waited by ``end`` if it never did."""
    started = _wait(run)
    return started if started is not None else max(0.0, end - run.job.submit_time)


def job_records(result: SimulationResult) -> pl.DataFrame:
    """Return one row per job, in submission order."""
    rows: dict[str, list[Any]] = {name: [] for name in (
        "job", "tenant", "local_queue", "cluster_queue", "gpus", "pods", "priority", "submit_time", "duration",
        "first_admitted", "first_started", "finished", "wait_seconds", "run_seconds", "unplaced_seconds",
        "preemptions", "pods_ready_evictions", "admissions", "lost_gpu_seconds", "state", "reason", "message",
        "flavors", "borrowed_at_admission", "nodes", "devices", "device_models", "flavor_reasons")}
    devices = result.devices
    for run in sorted(result.runs, key=lambda r: (r.job.submit_time, r.job.id)):
        job = run.job
        rows["job"].append(job.id)
        rows["tenant"].append(job.tenant)
        rows["local_queue"].append(run.local_queue)
        rows["cluster_queue"].append(run.workload.cluster_queue)
        rows["gpus"].append(run.accounting)
        rows["pods"].append(sum(ps.count for ps in job.pod_sets))
        rows["priority"].append(run.workload.priority)
        rows["submit_time"].append(job.submit_time)
        rows["duration"].append(job.duration)
        rows["first_admitted"].append(run.first_admitted)
        rows["first_started"].append(run.first_started)
        rows["finished"].append(run.finished)
        rows["wait_seconds"].append(_wait(run))
        rows["run_seconds"].append(run.run_seconds)
        rows["unplaced_seconds"].append(run.unplaced_seconds)
        rows["preemptions"].append(run.preemptions)
        rows["pods_ready_evictions"].append(run.pods_ready_evictions)
        rows["admissions"].append(run.admissions)
        rows["lost_gpu_seconds"].append(run.lost_seconds)
        rows["state"].append(run.state)
        rows["reason"].append(run.reason)
        rows["message"].append(run.message)
        rows["flavors"].append(run.flavors)
        rows["borrowed_at_admission"].append(run.borrowed_at_admission)
        rows["flavor_reasons"].append([f"{name}: {note}" for name, note in run.flavor_reasons.items()])
        record = devices.jobs.get(run.key) if devices is not None else None
        rows["nodes"].append(",".join(record.nodes) if record else ",".join(run.nodes))
        rows["devices"].append(",".join(str(device) for device in record.devices) if record else "")
        rows["device_models"].append(",".join(_models(record.devices, devices.models)) if record and devices else "")
    schema: dict[str, pl.DataType | type[pl.DataType]] = {
        "first_admitted": pl.Float64, "first_started": pl.Float64, "finished": pl.Float64,
        "wait_seconds": pl.Float64, "flavor_reasons": pl.List(pl.String)}
    return pl.DataFrame(rows, schema_overrides=schema)


def _models(devices: Sequence[DeviceID], models: dict[DeviceID, str]) -> list[str]:
    return sorted({models.get(device, device.driver) for device in devices})


def _claim_kind(run: JobRun) -> str:
    return "+".join(sorted({name for pod_set in run.job.pod_sets for name in pod_set.claims}))


def device_summary(result: SimulationResult) -> dict[str, Any] | None:
    """Per device model and per claim kind: where jobs with claims ran, and why others did not.

    None when the run had no DRA devices or claims.
    """
    report = result.devices
    if report is None:
        return None
    span = max(result.end - result.start, 0.0)
    jobs_per_model: dict[str, int] = {}
    for record in report.jobs.values():
        for model in _models(record.devices, report.models):
            jobs_per_model[model] = jobs_per_model.get(model, 0) + 1
    models = [{
        "model": model,
        "devices": count,
        "jobs": jobs_per_model.get(model, 0),
        "busyDeviceHours": report.busy_seconds.get(model, 0.0) / HOUR,
        "utilization": report.busy_seconds.get(model, 0.0) / (count * span) if count and span else 0.0,
    } for model, count in sorted(report.fleet.items())]
    return {"models": models, "claims": _claims_summary(result)}


def _claims_summary(result: SimulationResult) -> list[dict[str, Any]]:
    report = result.devices
    assert report is not None
    kinds: dict[str, dict[str, Any]] = {}
    for run in sorted(result.runs, key=lambda r: (r.job.submit_time, r.job.id)):
        kind = _claim_kind(run)
        if not kind:
            continue
        row = kinds.setdefault(kind, {"claims": kind, "jobs": 0, "started": 0, "models": {}, "notRun": {}})
        row["jobs"] += 1
        record = report.jobs.get(run.key)
        if run.first_started is not None and record is not None:
            row["started"] += 1
            for model in _models(record.devices, report.models):
                row["models"][model] = row["models"].get(model, 0) + 1
        elif run.state != JobState.FINISHED:
            reason = run.reason or run.state
            row["notRun"][reason] = row["notRun"].get(reason, 0) + 1
    return [kinds[kind] for kind in sorted(kinds)]


def summarize(result: SimulationResult) -> dict[str, Any]:
    """Compute the summary a report prints: per ClusterQueue rows and cluster figures."""
    by_queue: dict[str, list[JobRun]] = {}
    for run in result.runs:
        by_queue.setdefault(run.workload.cluster_queue or "(none)", []).append(run)
    queues = []
    for name in sorted(by_queue):
        runs = by_queue[name]
        finished = [r for r in runs if r.state == JobState.FINISHED]
        waits = [_wait_so_far(r, result.end) for r in runs if r.state != JobState.REJECTED]
        account = result.queues.get(name)
        queues.append({
            "clusterQueue": name,
            "traceTenants": sorted({r.job.tenant for r in runs}),
            "jobs": len(runs),
            "finished": len(finished),
            "neverStarted": sum(1 for r in runs if r.first_started is None),
            "rejected": sum(1 for r in runs if r.state == JobState.REJECTED),
            "gpuHours": sum(r.accounting * r.job.duration for r in finished) / HOUR,
            "demandGpuHours": sum(r.accounting * r.job.duration for r in runs) / HOUR,
            "waitSeconds": _percentiles(waits),
            "nominalGpus": account.nominal if account else 0,
            "borrowedGpuHours": account.borrowed_seconds / HOUR if account else 0.0,
            "maxBorrowedGpus": account.max_borrowed if account else 0,
            "preemptions": sum(r.preemptions for r in runs),
            "lostGpuHours": sum(r.lost_seconds for r in runs) / HOUR,
            "podsReadyEvictions": sum(r.pods_ready_evictions for r in runs),
        })
    span = max(result.end - result.start, 0.0)
    capacity_seconds = result.cluster_capacity * span
    placement_waits = [r.unplaced_seconds for r in result.runs if r.unplaced_seconds > 0]
    all_waits = [_wait_so_far(r, result.end) for r in result.runs if r.state != JobState.REJECTED]
    pending = [r for r in result.runs if r.state not in (JobState.FINISHED,)]
    summary: dict[str, Any] = {
        "resource": result.accounting_resource,
        "spanSeconds": span,
        "jobs": len(result.runs),
        "finished": sum(1 for r in result.runs if r.state == JobState.FINISHED),
        "cluster": {
            "capacity": result.cluster_capacity,
            "utilization": result.allocated_seconds / capacity_seconds if capacity_seconds else 0.0,
            "allocatedGpuHours": result.allocated_seconds / HOUR,
            "meanAdmittedNotPlacedJobs": result.unplaced_job_seconds / span if span else 0.0,
            "maxAdmittedNotPlacedJobs": result.max_unplaced_jobs,
            "jobsThatWaitedForPlacement": len(placement_waits),
            "placementWaitSeconds": _percentiles(placement_waits),
            "podsReadyEvictions": sum(r.pods_ready_evictions for r in result.runs),
            "preemptions": result.preemptions,
            "lostGpuHours": sum(r.lost_seconds for r in result.runs) / HOUR,
            "schedulingCycles": result.cycles,
            "waitSeconds": _percentiles(all_waits),
        },
        "clusterQueues": queues,
        "tenantMapping": result.tenants,
        "notFinished": [
            {"job": r.job.id, "tenant": r.job.tenant, "state": r.state, "reason": r.reason, "message": r.message,
             "flavors": dict(r.flavor_reasons)}
            for r in pending[:200]
        ],
        "notes": list(result.notes),
    }
    devices = device_summary(result)
    if devices is not None:
        summary["devices"] = devices
    return summary
