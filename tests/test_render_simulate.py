"""Simulating the rendered folder gives exactly the results of simulating the spec it came from."""

from __future__ import annotations

from pathlib import Path

from builders import EXAMPLES
from gpuplane.model.platform.load import load_platform_objects
from gpuplane.model.scenario import Scenario
from gpuplane.model.trace import Trace, TraceJob, TracePodSet
from gpuplane.sim.metrics import job_records
from gpuplane.sim.simulator import JobState, Simulator
from gpuplane.surfaces.render import render_spec

TENANTS = {
    "vision-lab": "vision-lab/default",
    "nlp-lab": "nlp-lab/default",
    "bio-lab": "bio-lab/default",
    "ml-course": "ml-course/default",
}


def _trace() -> Trace:
    """Jobs from four tenants, large enough that the labs queue and borrow."""
    jobs = []
    sizes = [8, 4, 1, 16, 2, 8, 1, 4]
    for number in range(160):
        tenant = list(TENANTS)[number % len(TENANTS)]
        gpus = sizes[number % len(sizes)]
        if tenant == "ml-course":
            gpus = 1
        pods, per_pod = (gpus // 8, 8) if gpus > 8 else (1, gpus)
        jobs.append(TraceJob(id=f"job-{number}", submit_time=number * 120.0, duration=3600.0 + 600 * (number % 7),
                             tenant=tenant, pod_sets=(TracePodSet("main", pods, {"nvidia.com/gpu": per_pod}),)))
    return Trace(tuple(jobs), "test")


def _scenario() -> Scenario:
    return Scenario.model_validate({"spec": {"tenantMapping": {"tenants": TENANTS}}})


def test_rendered_folder_simulates_like_the_spec(tmp_path: Path) -> None:
    spec = EXAMPLES / "university" / "platform.yaml"
    render_spec(spec, tmp_path / "rendered")
    from_spec = Simulator(load_platform_objects(spec), _trace(), _scenario()).run()
    from_folder = Simulator(load_platform_objects(tmp_path / "rendered"), _trace(), _scenario()).run()

    assert {run.state for run in from_spec.runs} == {JobState.FINISHED}
    assert sum(account.borrowed_seconds for account in from_spec.queues.values()) > 0
    assert job_records(from_folder).equals(job_records(from_spec))
    assert from_folder.cluster_capacity == from_spec.cluster_capacity
