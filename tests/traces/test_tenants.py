"""Mapping trace tenants to LocalQueues."""

from __future__ import annotations

import pytest

from gpuplane.model.errors import TraceError
from gpuplane.model.trace import Trace, TraceJob, TracePodSet
from gpuplane.model.traces import map_tenants
from gpuplane.model.traces.tenants import invalid_queue_key

POD_SETS = (TracePodSet("main", 1, {"nvidia.com/gpu": 1}),)


def _trace(*tenants: str, queue: str | None = None) -> Trace:
    jobs = tuple(TraceJob(f"j{index}", index, 10, tenant, POD_SETS, queue=queue)
                 for index, tenant in enumerate(tenants))
    return Trace(jobs=jobs, source="test")


def test_mapping_sets_queues() -> None:
    mapped = map_tenants(_trace("a", "b", "a"), {"a": "team-a/gpu", "b": "team-b/gpu"})
    assert [job.queue for job in mapped.jobs] == ["team-a/gpu", "team-b/gpu", "team-a/gpu"]
    assert [job.tenant for job in mapped.jobs] == ["a", "b", "a"]


def test_default_takes_unmapped_tenants() -> None:
    mapped = map_tenants(_trace("a", "b", "c"), {"a": "team-a/gpu"}, default="shared/gpu")
    assert [job.queue for job in mapped.jobs] == ["team-a/gpu", "shared/gpu", "shared/gpu"]
    assert mapped.notes[-1] == (
        "2 jobs of 2 tenant(s) without a mapping went to the default queue shared/gpu.")


def test_unmapped_tenants_without_default() -> None:
    with pytest.raises(TraceError) as caught:
        map_tenants(_trace("a", "b", "c", "c"), {"a": "team-a/gpu"})
    assert caught.value.problem == "2 tenant(s) of the trace have no queue: b (1 jobs), c (2 jobs)."
    assert caught.value.value == ["b", "c"]


def test_existing_queue_is_kept() -> None:
    mapped = map_tenants(_trace("a", queue="own/queue"), {"a": "team-a/gpu"})
    assert mapped.jobs[0].queue == "own/queue"


def test_jobs_with_queue_need_no_mapping() -> None:
    mapped = map_tenants(_trace("unlisted", queue="own/queue"), {})
    assert mapped.jobs[0].queue == "own/queue"


def test_invalid_queue_key_in_mapping() -> None:
    with pytest.raises(TraceError) as caught:
        map_tenants(_trace("a"), {"a": "Team A/gpu"})
    assert caught.value.location.field == "tenant a"
    assert caught.value.value == "Team A/gpu"


def test_invalid_default_queue() -> None:
    with pytest.raises(TraceError) as caught:
        map_tenants(_trace("a"), {}, default="no-slash")
    assert caught.value.problem == "The queue has no slash between namespace and name."


@pytest.mark.parametrize(
    ("key", "valid"),
    [
        ("team-a/gpu", True),
        ("team-a/gpu.large", True),
        ("team.a/gpu", False),
        ("team-a/", False),
        ("/gpu", False),
        ("team-a", False),
        ("Team-a/gpu", False),
        ("a" * 64 + "/gpu", False),
    ],
)
def test_queue_key_form(key: str, valid: bool) -> None:
    assert (invalid_queue_key(key) is None) == valid


def test_philly_tenants_map_to_queues(philly: Trace) -> None:
    mapping = {tenant: f"vc-{tenant}/default" for tenant in philly.tenants()}
    mapped = map_tenants(philly, mapping)
    assert {job.queue for job in mapped.jobs} == set(mapping.values())
    assert len(mapped.jobs) == len(philly.jobs)
