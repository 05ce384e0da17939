"""ClusterQueue heaps: StrictFIFO keeps its head, BestEffortFIFO parks a shape until the cohort changes."""

from __future__ import annotations

from gpuplane.decisions.quota.queues import ClusterQueueQueue, QueueLocation, RequeueReason
from gpuplane.decisions.quota.workload import PodSetRequest, Workload


def _workload(name: str, gpus: int, *, created: float, priority: int = 0) -> Workload:
    pod_set = PodSetRequest(name="main", count=1, requests={"nvidia.com/gpu": gpus})
    return Workload(key=f"ns/{name}", cluster_queue="cq", pod_sets=[pod_set], priority=priority, created=created)


def test_heap_order_is_priority_then_time() -> None:
    queue = ClusterQueueQueue("cq", strict_fifo=False)
    old = _workload("old", 1, created=1)
    new_high = _workload("new-high", 1, created=5, priority=10)
    newer = _workload("newer", 1, created=2)
    for workload in (old, new_high, newer):
        queue.push(workload)
    assert [queue.pop(), queue.pop(), queue.pop()] == [new_high, old, newer]
    assert queue.pop() is None


def test_best_effort_parks_every_workload_of_the_shape() -> None:
    queue = ClusterQueueQueue("cq", strict_fifo=False)
    big_1, big_2, small = (_workload("big-1", 8, created=1), _workload("big-2", 8, created=2),
                           _workload("small", 1, created=3))
    for workload in (big_1, big_2, small):
        queue.push(workload)
    head = queue.pop()
    assert head is big_1
    assert queue.requeue(big_1, RequeueReason.NO_FIT) == QueueLocation.INADMISSIBLE
    assert queue.location(big_2) == QueueLocation.INADMISSIBLE
    assert queue.pop() is small


def test_parked_shape_returns_after_requeue() -> None:
    queue = ClusterQueueQueue("cq", strict_fifo=False)
    big_1, big_2 = _workload("big-1", 8, created=1), _workload("big-2", 8, created=2)
    queue.push(big_1)
    queue.push(big_2)
    queue.requeue(queue.pop() or big_1, RequeueReason.NO_FIT)
    assert not queue.has_active()
    moved = queue.requeue_inadmissible(backoff_expired=lambda w: True, namespace_ok=lambda w: True)
    assert moved == 2
    assert queue.pop() is big_1


def test_new_workload_of_a_parked_shape_waits_parked() -> None:
    queue = ClusterQueueQueue("cq", strict_fifo=False)
    first = _workload("first", 8, created=1)
    queue.push(first)
    queue.requeue(queue.pop() or first, RequeueReason.NO_FIT)
    late = _workload("late", 8, created=9)
    queue.push(late)
    assert queue.location(late) == QueueLocation.INADMISSIBLE


def test_strict_fifo_head_blocks_the_queue() -> None:
    queue = ClusterQueueQueue("cq", strict_fifo=True)
    big, small = _workload("big", 8, created=1), _workload("small", 1, created=2)
    queue.push(big)
    queue.push(small)
    head = queue.pop()
    assert queue.requeue(big, RequeueReason.NO_FIT) == QueueLocation.ACTIVE
    assert head is big
    assert queue.pop() is big


def test_strict_fifo_namespace_mismatch_is_parked() -> None:
    queue = ClusterQueueQueue("cq", strict_fifo=True)
    workload = _workload("w", 1, created=1)
    queue.push(workload)
    queue.pop()
    assert queue.requeue(workload, RequeueReason.NAMESPACE_MISMATCH) == QueueLocation.INADMISSIBLE


def test_preemptor_is_sticky_in_best_effort() -> None:
    queue = ClusterQueueQueue("cq", strict_fifo=False)
    preemptor = _workload("preemptor", 4, created=5)
    older = _workload("older", 1, created=1)
    queue.push(preemptor)
    queue.push(older)
    assert queue.pop() is older
    queue.requeue(older, RequeueReason.NO_FIT)
    assert queue.pop() is preemptor
    queue.requeue(preemptor, RequeueReason.PENDING_PREEMPTION)
    queue.requeue_inadmissible(backoff_expired=lambda w: True, namespace_ok=lambda w: True)
    assert queue.pop() is preemptor


def test_backoff_keeps_a_workload_inadmissible() -> None:
    queue = ClusterQueueQueue("cq", strict_fifo=False)
    workload = _workload("w", 1, created=1)
    queue.push(workload, backoff_expired=False)
    assert queue.location(workload) == QueueLocation.INADMISSIBLE
    assert queue.requeue_inadmissible(backoff_expired=lambda w: False, namespace_ok=lambda w: True) == 0
    assert queue.requeue_inadmissible(backoff_expired=lambda w: True, namespace_ok=lambda w: True) == 1
    assert queue.pop() is workload


def test_deleted_workload_is_never_popped() -> None:
    queue = ClusterQueueQueue("cq", strict_fifo=False)
    gone, kept = _workload("gone", 1, created=1), _workload("kept", 1, created=2)
    queue.push(gone)
    queue.push(kept)
    queue.delete(gone)
    assert queue.pop() is kept
    assert len(queue) == 0
