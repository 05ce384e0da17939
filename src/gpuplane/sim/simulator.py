"""The discrete-event simulation of a platform replaying a trace.

The simulator owns the clock. It creates a Workload for each trace job when
the job is submitted, lets Kueue (:class:`KueueEngine`) reserve quota in
scheduling cycles, binds the pods of admitted workloads to nodes
(:class:`NodeIndex`), runs each job for its duration and releases what it
held when it finishes. Preempted workloads are evicted: their pods get the
termination grace period, then the quota is released and the workload goes
back to its queue, restarting from the beginning (no checkpoints). With
``waitForPodsReady`` (on by default in Kueue v1beta2) a workload whose pods
are not all running within the timeout is evicted and requeued after an
exponential backoff.

Nothing in here logs or reads the wall clock; observers subscribe through
:class:`Reporter`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from gpuplane.decisions.placement.nodes import NodeIndex, NodeState, PlacementRequest, ScoringStrategy
from gpuplane.decisions.quota.engine import (
    KueueEngine,
)
from gpuplane.decisions.quota.priority import PriorityClasses, ResolvedPriority, resolve_priority
from gpuplane.decisions.quota.scheduler import CycleResult, Entry
from gpuplane.decisions.quota.snapshot import ObservedWorkload
from gpuplane.decisions.quota.state import ClusterQueue
from gpuplane.decisions.quota.workload import CheckState, PodSetRequest, Workload, WorkloadPhase
from gpuplane.model.errors import SimulationError
from gpuplane.model.manifests import ObjectSet
from gpuplane.model.objects import kueue as api
from gpuplane.model.objects.core import Namespace, Node, PriorityClass, Toleration
from gpuplane.model.quantity import resource_amount
from gpuplane.model.scenario import Scenario
from gpuplane.model.trace import Trace, TraceJob, TracePodSet
from gpuplane.sim.cluster_state import observe_workloads
from gpuplane.sim.config import kueue_config_from_scenario, request_policy_from_scenario
from gpuplane.sim.devices import DeviceSimulation
from gpuplane.sim.events import EventKind, EventQueue
from gpuplane.sim.records import JobRun, JobState, PodRun, QueueAccount, Reporter, SimulationResult

__all__ = ["JobRun", "JobState", "Reporter", "SimulationResult", "Simulator", "kueue_config_from_scenario"]


_MAX_CYCLES_PER_INSTANT = 1_000_000
_TIMERS = frozenset({EventKind.PODS_READY_TIMEOUT, EventKind.EXECUTION_TIME_EXCEEDED})


class Simulator:
    """Replays a trace on a platform (Kubernetes objects) under a scenario."""

    def __init__(self, objects: ObjectSet, trace: Trace, scenario: Scenario, *,
                 reporter: Reporter | None = None, check_invariants: bool = False) -> None:
        self.scenario = scenario
        self.trace = trace
        self.reporter = reporter
        self.check_invariants = check_invariants
        self.resource = scenario.spec.accounting_resource
        self.events = EventQueue()
        self.now = 0.0
        self.notes: list[str] = list(trace.notes)

        self.request_policy = request_policy_from_scenario(scenario)
        self.priority_classes = PriorityClasses.from_objects(objects.of(api.WorkloadPriorityClass),
                                                             objects.of(PriorityClass))
        self.engine = KueueEngine.from_objects(
            flavors=objects.of(api.ResourceFlavor), cluster_queues=objects.of(api.ClusterQueue),
            cohorts=objects.of(api.Cohort), local_queues=objects.of(api.LocalQueue),
            namespaces=objects.of(Namespace), workload_priority_classes=objects.of(api.WorkloadPriorityClass),
            priority_classes=dict(self.priority_classes.pod), config=kueue_config_from_scenario(scenario))
        self.nodes = NodeIndex(
            (_node_state(node) for node in objects.of(Node)),
            strategy=ScoringStrategy(scenario.spec.placement.scoring_strategy),
            accelerator_resources=_accelerators(self.resource))
        self.capacity = self.nodes.capacity(self.resource)
        self.devices = DeviceSimulation.build(objects, trace, scenario, self.nodes, self._namespace_of)
        if self.devices is not None:
            self.capacity += self.devices.capacity(self.resource)

        self.runs: dict[str, JobRun] = {}
        self.unplaced: dict[str, JobRun] = {}
        self.queues = {name: QueueAccount(nominal=_nominal(queue, self.resource))
                       for name, queue in self.engine.state.cluster_queues.items()}
        self.tenants: dict[str, str] = {}
        self.finished = 0
        self.cycles = 0
        self.preemption_count = 0
        self.allocated = 0
        self.allocated_seconds = 0.0
        self.unplaced_job_seconds = 0.0
        self.max_unplaced = 0
        self._last_integral = 0.0
        self._schedule_pending = False
        self._place_pending = False
        self._requeue_pending: set[str] = set()
        self._placement_cache: dict[object, PlacementRequest] = {}
        self._pod_set_cache: dict[object, tuple[PodSetRequest, object]] = {}
        self._block_admission = (scenario.spec.kueue.wait_for_pods_ready_enabled
                                 and scenario.spec.kueue.wait_for_pods_ready.block_admission)
        self.initial = observe_workloads(objects, scenario, self.engine.state, classes=self.priority_classes,
                                         policy=self.request_policy)
        self.notes.extend(self.initial.notes)

    # --- the loop ---------------------------------------------------------------------------

    def run(self) -> SimulationResult:
        """Run to the end of the trace (or ``spec.until``) and return the results."""
        for job in self.trace.jobs:
            self.events.push(job.submit_time, EventKind.SUBMIT, job)
        afs = self.engine.config.admission_fair_sharing
        if afs is not None and afs.usage_sampling_interval_seconds > 0 and self.trace.jobs:
            self.events.push(afs.usage_sampling_interval_seconds, EventKind.AFS_SAMPLE)
        until = self.scenario.spec.until
        start = self.trace.jobs[0].submit_time if self.trace.jobs else 0.0
        if self.initial.workloads:
            start = min(start, 0.0)
        self.now = start
        self._last_integral = start
        for account in self.queues.values():
            account.last = start
        self._adopt_initial_state()
        handlers: dict[int, Callable[[Any], None]] = {
            EventKind.POD_TERMINATED: self._on_pods_terminated,
            EventKind.CHECK_STATE: self._on_check_state,
            EventKind.BACKOFF_EXPIRED: self._on_backoff_expired,
            EventKind.REQUEUE_INADMISSIBLE: self._on_requeue,
            EventKind.SUBMIT: self._on_submit,
            EventKind.PODS_READY_TIMEOUT: self._on_pods_ready_timeout,
            EventKind.AFS_SAMPLE: self._on_afs_sample,
            EventKind.SCHEDULE: self._on_schedule,
            EventKind.PLACE: self._on_place,
            EventKind.EXECUTION_TIME_EXCEEDED: self._on_execution_time_exceeded,
        }
        events = self.events
        stop = math.inf if until is None else start + until
        while events:
            time, kind, payload = events.pop_raw()
            if time > stop:
                self._advance(stop)
                break
            if kind in _TIMERS and self._stale_timer(kind, payload):
                # A timer of a workload that has moved on must not advance the clock (and the end of the run).
                continue
            if time < self.now:
                raise SimulationError(f"event {EventKind(kind).name} at {time} is before the clock ({self.now})")
            if time != self.now or time != self._last_integral:
                self._advance(time)
            handlers[kind](payload)
            if self.check_invariants:
                self._check_invariants()
        self._advance(self.now)
        return self._result(start)

    def _stale_timer(self, kind: int, payload: tuple[str, int]) -> bool:
        run = self.runs[payload[0]]
        if run.generation != payload[1]:
            return True
        if kind == EventKind.PODS_READY_TIMEOUT:
            return run.state != JobState.ADMITTED
        return run.state not in (JobState.ADMITTED, JobState.RUNNING)

    def _advance(self, now: float) -> None:
        elapsed = now - self._last_integral
        if elapsed > 0:
            self.allocated_seconds += self.allocated * elapsed
            self.unplaced_job_seconds += len(self.unplaced) * elapsed
            self._last_integral = now
        self.now = now

    def _wake_scheduler(self) -> None:
        if not self._schedule_pending:
            self._schedule_pending = True
            self.events.push(self.now, EventKind.SCHEDULE)

    def _wake_placement(self) -> None:
        if not self._place_pending and self.unplaced:
            self._place_pending = True
            self.events.push(self.now, EventKind.PLACE)

    def _requeue_later(self, target: str | None) -> None:
        """Kueue batches the move of inadmissible workloads back to their heaps by one second."""
        if target is None or target in self._requeue_pending:
            return
        self._requeue_pending.add(target)
        self.events.push(self.now + self.engine.config.requeue_batch_seconds, EventKind.REQUEUE_INADMISSIBLE, target)

    # --- the cluster state at t=0 --------------------------------------------------------------

    def _adopt_initial_state(self) -> None:
        """Charge the dump's admitted workloads and queue its pending ones, oldest first.

        Without pod objects gpuplane does not know where running pods are: the
        pods of an admitted workload are placed by the normal placement pass at
        t=0, before any new workload is admitted.
        """
        for observed in self.initial.workloads:
            run = self._initial_run(observed)
            self.runs[run.key] = run
            if run.state == JobState.REJECTED:
                self.finished += 1
                continue
            workload = run.workload
            if workload.admission is None:
                self.engine.submit(workload, now=self.now)
                continue
            self.engine.add_admitted(workload)
            self._reserved(run)
            run.flavors = ",".join(sorted({flavor for ps in workload.admission.pod_sets
                                           for flavor in ps.flavors.values()}))
            self._after_reservation(run)
            self._drain_if_stopped(run)
        self._wake_scheduler()

    def _initial_run(self, observed: ObservedWorkload) -> JobRun:
        workload = observed.workload
        namespace, name = workload.key.split("/", 1)
        pod_sets = tuple(TracePodSet(ps.name, ps.count, requests, ps.min_count)
                         for ps, requests in zip(workload.pod_sets, observed.pod_requests, strict=True))
        job = TraceJob(id=name, submit_time=workload.created, duration=observed.runtime, tenant=namespace,
                       pod_sets=pod_sets, queue=workload.local_queue or None)
        self.tenants.setdefault(namespace, workload.local_queue)
        run = JobRun(job=job, workload=workload, local_queue=workload.local_queue,
                     accounting=job.gpu_count(self.resource), remaining=observed.runtime)
        if not workload.cluster_queue:
            run.state = JobState.REJECTED
            run.reason = "LocalQueueNotFound"
            run.message = (f"Workload {workload.key} names LocalQueue {workload.local_queue or '(none)'}, which "
                           "the input does not have")
        return run

    def _drain_if_stopped(self, run: JobRun) -> None:
        """stopPolicy HoldAndDrain on its ClusterQueue or LocalQueue evicts an Admitted workload."""
        workload = run.workload
        queue = self.engine.state.cluster_queues[workload.cluster_queue]
        local = self.engine.state.local_queues.get(workload.local_queue)
        reason = ("ClusterQueueStopped" if queue.stop_policy == "HoldAndDrain"
                  else "LocalQueueStopped" if local is not None and local.stop_policy == "HoldAndDrain" else None)
        if reason is None or workload.phase is not WorkloadPhase.ADMITTED:
            return
        run.reason = reason
        run.message = ("The ClusterQueue is stopped" if reason == "ClusterQueueStopped"
                       else "The LocalQueue is stopped")
        self.engine.evict(workload, reason)
        self._begin_eviction(run, reason)

    # --- submission -------------------------------------------------------------------------

    def _on_submit(self, job: TraceJob) -> None:
        run = self._make_run(job)
        self.runs[run.key] = run
        if run.state == JobState.REJECTED:
            self.finished += 1
            return
        self.engine.submit(run.workload, now=self.now)
        self._wake_scheduler()

    def _local_queue_of(self, job: TraceJob) -> str | None:
        if job.queue:
            return job.queue
        mapping = self.scenario.spec.tenant_mapping
        return mapping.tenants.get(job.tenant, mapping.default)

    def _namespace_of(self, job: TraceJob) -> str:
        local_queue = self._local_queue_of(job) or ""
        return local_queue.split("/", 1)[0] if "/" in local_queue else "default"

    def _make_run(self, job: TraceJob) -> JobRun:
        local_queue = self._local_queue_of(job) or ""
        self.tenants.setdefault(job.tenant, local_queue)
        namespace = local_queue.split("/", 1)[0] if "/" in local_queue else "default"
        info = self.engine.state.local_queues.get(local_queue)
        pod_sets, shapes = self._pod_sets(job)
        inadmissible = ""
        if self.devices is not None:
            pod_sets, shapes, inadmissible = self.devices.charge(job, namespace, pod_sets, shapes)
        workload = Workload(key=f"{namespace}/{job.id}", cluster_queue=info.cluster_queue if info else "",
                            pod_sets=pod_sets, created=job.submit_time, local_queue=local_queue, payload=job,
                            pod_set_shapes=shapes)
        run = JobRun(job=job, workload=workload, local_queue=local_queue, accounting=job.gpu_count(self.resource),
                     remaining=job.duration)
        if self.devices is not None:
            run.accounting = sum(ps.count * ps.requests.get(self.resource, 0) for ps in pod_sets)
        if info is None:
            run.state = JobState.REJECTED
            run.reason = "LocalQueueNotFound"
            run.message = (f"tenant {job.tenant!r} submits to LocalQueue {local_queue or '(none)'}, which does "
                           "not exist; add it to the tenant mapping or the platform")
            return run
        priority = self._priority(job.priority_class)
        if priority.blocked:
            run.state = JobState.REJECTED
            run.reason = "PriorityClassNotFound"
            run.message = (f"priority class {job.priority_class!r} is neither a WorkloadPriorityClass "
                           "nor a PriorityClass; Kueue does not create the Workload")
            return run
        workload.set_priority(priority.value)
        if inadmissible:
            # Kueue's workload controller marks it inadmissible; it never reaches a queue.
            run.state = JobState.REJECTED
            run.reason = "Inadmissible"
            run.message = inadmissible
        return run

    def _pod_sets(self, job: TraceJob) -> tuple[list[PodSetRequest], tuple[object, ...]]:
        """Trace jobs of one shape share their pod set objects and scheduling shape."""
        pod_sets = []
        shapes = []
        for ps in job.pod_sets:
            key = (ps.name, ps.count, ps.min_count, tuple(sorted(ps.requests.items())))
            cached = self._pod_set_cache.get(key)
            if cached is None:
                quota_requests = self.request_policy.quota_requests(ps.requests)
                request = PodSetRequest(name=ps.name, count=ps.count, requests=quota_requests,
                                        min_count=ps.min_count,
                                        pod_requests=None if quota_requests == ps.requests else dict(ps.requests))
                cached = self._pod_set_cache[key] = (request, request.shape())
            pod_sets.append(cached[0])
            shapes.append(cached[1])
        return pod_sets, tuple(shapes)

    def _priority(self, name: str | None) -> ResolvedPriority:
        """Resolve a trace job's priority class: a WorkloadPriorityClass of that name stands for the
        ``kueue.x-k8s.io/priority-class`` label, any other name for the pods' ``priorityClassName``."""
        if name is not None and name in self.priority_classes.workload:
            return resolve_priority(self.priority_classes, workload_priority_class=name)
        return resolve_priority(self.priority_classes, pod_priority_class=name)

    # --- Kueue ------------------------------------------------------------------------------

    def _on_schedule(self, _: object) -> None:
        self._schedule_pending = False
        if self._block_admission and self._admission_blocked():
            return
        try:
            self.engine.settle(now=self.now, max_cycles=_MAX_CYCLES_PER_INSTANT, on_cycle=self._after_cycle,
                               stop=self._admission_blocked if self._block_admission else None)
        except RuntimeError as error:
            raise SimulationError(str(error)) from None

    def _admission_blocked(self) -> bool:
        """waitForPodsReady.blockAdmission: admit nothing while an admitted workload's pods are not all running.

        NOTE: Kueue evaluates this per entry inside the cycle; gpuplane checks it
        between cycles, so one more workload can be admitted in the cycle that
        creates the wait.
        """
        return any(run.state == JobState.ADMITTED for run in self.unplaced.values())

    def _after_cycle(self, result: CycleResult) -> None:
        self.cycles += 1
        if self.reporter is not None:
            self.reporter.on_cycle(self.now, result)
        for entry in result.entries:
            if entry.admitted:
                self._on_reserved(self.runs[entry.workload.key], entry)
        for entry, target in result.preemptions():
            self._preempt(self.runs[target.workload.key], target.reason, entry)

    def _on_reserved(self, run: JobRun, entry: Entry) -> None:
        """Quota is reserved; once admission checks are Ready the job's pods are created."""
        self._reserved(run)
        if entry.assignment is not None:
            run.flavors = ",".join(sorted({fa.name for ps in entry.assignment.pod_sets for fa in ps.flavors.values()}))
        self._after_reservation(run)

    def _after_reservation(self, run: JobRun) -> None:
        if run.workload.phase is WorkloadPhase.ADMITTED:
            self._create_pods(run)
        else:
            run.state = JobState.RESERVED
            self._start_checks(run)

    def _reserved(self, run: JobRun) -> None:
        workload = run.workload
        run.generation += 1
        run.admissions += 1
        run.admitted_at = self.now
        if run.first_admitted is None:
            run.first_admitted = self.now
        account = self.queues[workload.cluster_queue]
        account.advance(self.now)
        account.used += _accounting_usage(workload, self.resource)
        account.max_borrowed = max(account.max_borrowed, account.used - account.nominal)
        run.borrowed_at_admission = max(0, account.used - account.nominal)

    def _create_pods(self, run: JobRun) -> None:
        workload = run.workload
        assert workload.admission is not None
        run.state = JobState.ADMITTED
        run.pods = []
        state = self.engine.state
        for index, (request, assigned) in enumerate(zip(workload.pod_sets, workload.admission.pod_sets, strict=True)):
            labels: dict[str, str] = {}
            tolerations: list[Toleration] = list(request.tolerations)
            for flavor_name in dict.fromkeys(assigned.flavors.values()):
                flavor = state.flavors[flavor_name]
                labels.update(flavor.node_labels)
                tolerations.extend(flavor.tolerations)
            labels.update(request.node_selector)
            node_requests = (request.node_requests() if self.devices is None
                             else self.devices.node_requests(request.node_requests()))
            placement = self._placement_request(node_requests, labels, tuple(tolerations))
            requests = placement.requests
            run.pods.extend([PodRun(index, requests, placement) for _ in range(assigned.count)])
        run.unplaced_since = self.now
        run.admitted_phase_since = self.now
        self.unplaced[run.key] = run
        limit = run.job.maximum_execution_seconds
        if limit is not None:
            left = max(0.0, limit - run.past_execution_seconds)
            self.events.push(self.now + left, EventKind.EXECUTION_TIME_EXCEEDED, (run.key, run.generation))
        if self.scenario.spec.kueue.wait_for_pods_ready_enabled:
            # NOTE: recoveryTimeout is read but never fires: a simulated pod, once running, stays ready
            # until its job ends or is evicted, so a workload never loses PodsReady.
            timeout = self.scenario.spec.kueue.wait_for_pods_ready.timeout
            self.events.push(self.now + timeout, EventKind.PODS_READY_TIMEOUT, (run.key, run.generation))
        self._wake_placement()

    def _placement_request(self, requests: Mapping[str, int], labels: dict[str, str],
                           tolerations: tuple[Toleration, ...]) -> PlacementRequest:
        """Pods of the same shape on the same flavor share one request object."""
        # Pydantic models do not hash, so tolerations enter the key as their JSON.
        key = (tuple(sorted(requests.items())), tuple(sorted(labels.items())),
               tuple(t.model_dump_json() for t in tolerations))
        found = self._placement_cache.get(key)
        if found is None:
            found = self._placement_cache[key] = PlacementRequest.build(dict(requests), labels, tolerations)
        return found

    # --- admission checks -------------------------------------------------------------------

    def _start_checks(self, run: JobRun) -> None:
        """Ask the controller of every check that applies to the assigned flavors for its state."""
        workload = run.workload
        for name in self._checks_of(workload):
            if workload.admission_checks.get(name) is CheckState.READY:
                continue
            behaviour = self.scenario.spec.admission_checks.get(name)
            delay = behaviour.ready_after if behaviour is not None else 0.0
            self.events.push(self.now + delay, EventKind.CHECK_STATE, (run.key, run.generation, name))

    def _checks_of(self, workload: Workload) -> list[str]:
        assert workload.admission is not None
        queue = self.engine.state.cluster_queues[workload.admission.cluster_queue]
        return queue.checks_for({flavor for ps in workload.admission.pod_sets for flavor in ps.flavors.values()})

    def _check_outcome(self, run: JobRun, name: str) -> CheckState:
        behaviour = self.scenario.spec.admission_checks.get(name)
        if behaviour is None or behaviour.outcome == "Ready":
            return CheckState.READY
        if behaviour.outcome == "Rejected":
            return CheckState.REJECTED
        if behaviour.retries is not None and run.check_retries.get(name, 0) >= behaviour.retries:
            return CheckState.READY
        return CheckState.RETRY

    def _on_check_state(self, payload: tuple[str, int, str]) -> None:
        key, generation, name = payload
        run = self.runs[key]
        if run.generation != generation or run.state != JobState.RESERVED:
            return
        workload = run.workload
        state = self._check_outcome(run, name)
        workload.admission_checks[name] = state
        if state is CheckState.READY:
            if all(workload.admission_checks.get(check) is CheckState.READY for check in self._checks_of(workload)):
                workload.phase = WorkloadPhase.ADMITTED
                self._create_pods(run)
            return
        if state is CheckState.REJECTED:
            self._account_release(run)
            self._deactivate(run, "AdmissionCheckRejected", f"Deactivated due to AdmissionCheck {name} in "
                             "Rejected state")
            return
        retries = run.check_retries[name] = run.check_retries.get(name, 0) + 1
        behaviour = self.scenario.spec.admission_checks[name]
        backoff = behaviour.retry_backoff.seconds(retries) if behaviour.retry_backoff is not None else 0.0
        run.check_requeue_at = self.now + backoff
        run.reason = "AdmissionCheck"
        run.message = f"Evicted due to AdmissionCheck {name} in Retry state (retry {retries})"
        self.engine.evict(workload, "AdmissionCheck")
        self._begin_eviction(run, "AdmissionCheck")

    def _deactivate(self, run: JobRun, reason: str, message: str) -> None:
        """Set ``spec.active=false``: the quota goes back and the workload is never queued again."""
        workload = run.workload
        target = self.engine.release(workload)
        workload.active = False
        workload.admission = None
        workload.usage = {}
        run.state = JobState.REJECTED
        run.reason = reason
        run.message = message
        run.generation += 1
        self.finished += 1
        self._requeue_later(target)
        self._wake_scheduler()

    # --- placement --------------------------------------------------------------------------

    def _on_place(self, _: object) -> None:
        self._place_pending = False
        for run in list(self.unplaced.values()):
            if run.state != JobState.ADMITTED:
                continue
            for pod in run.pods:
                if pod.node is not None:
                    continue
                node = (self.nodes.find_node(pod.request) if self.devices is None
                        else self.devices.place(run, pod, self.now))
                if node is None:
                    continue
                self.nodes.bind(node, pod.requests)
                pod.node = node
                self.allocated += (pod.requests.get(self.resource, 0) if self.devices is None
                                   else self.devices.accounted(run, pod, self.resource))
            if all(pod.node is not None for pod in run.pods):
                self._start(run)
        # Count only jobs still waiting once this instant's placement pass is done.
        self.max_unplaced = max(self.max_unplaced, len(self.unplaced))

    def _start(self, run: JobRun) -> None:
        del self.unplaced[run.key]
        if run.unplaced_since is not None:
            run.unplaced_seconds += self.now - run.unplaced_since
            run.unplaced_since = None
        run.state = JobState.RUNNING
        run.nodes = tuple(sorted({pod.node.name for pod in run.pods if pod.node is not None}))
        run.started_at = self.now
        if run.first_started is None:
            run.first_started = self.now
        self.events.push(self.now + run.remaining, EventKind.POD_TERMINATED, (run.key, run.generation, "finished"))

    def _release_pods(self, run: JobRun) -> None:
        for pod in run.pods:
            if pod.node is not None:
                self.nodes.unbind(pod.node, pod.requests)
                self.allocated -= (pod.requests.get(self.resource, 0) if self.devices is None
                                   else self.devices.accounted(run, pod, self.resource))
                pod.node = None
            if self.devices is not None:
                self.devices.release(pod, self.now)
        if run.key in self.unplaced:
            del self.unplaced[run.key]
            if run.unplaced_since is not None:
                run.unplaced_seconds += self.now - run.unplaced_since
                run.unplaced_since = None

    # --- ends of runs -----------------------------------------------------------------------

    def _on_pods_terminated(self, payload: tuple[str, int, str]) -> None:
        key, generation, why = payload
        run = self.runs[key]
        if run.generation != generation:
            return
        if why == "finished":
            self._finish(run)
        else:
            self._complete_eviction(run, why)

    def _finish(self, run: JobRun) -> None:
        assert run.started_at is not None
        run.run_seconds += self.now - run.started_at
        run.remaining = 0.0
        self._release_pods(run)
        self._account_release(run)
        target = self.engine.finish(run.workload, now=self.now)
        run.state = JobState.FINISHED
        run.finished = self.now
        run.generation += 1
        self.finished += 1
        if self.reporter is not None and (self.finished % 1000 == 0 or self.finished == len(self.trace.jobs)):
            self.reporter.on_progress(self.now, self.finished, len(self.trace.jobs))
        self._requeue_later(target)
        self._wake_placement()

    def _account_release(self, run: JobRun) -> None:
        account = self.queues.get(run.workload.cluster_queue)
        if account is not None and run.workload.admission is not None:
            account.advance(self.now)
            account.used -= _accounting_usage(run.workload, self.resource)

    def _preempt(self, run: JobRun, reason: str, by: Entry) -> None:
        run.preemptions += 1
        self.preemption_count += 1
        self._begin_eviction(run, f"Preempted:{reason}")

    def _on_execution_time_exceeded(self, payload: tuple[str, int]) -> None:
        key, generation = payload
        run = self.runs[key]
        if run.generation != generation or run.state not in (JobState.ADMITTED, JobState.RUNNING):
            return
        self.engine.evict(run.workload, "MaximumExecutionTimeExceeded")
        self._begin_eviction(run, "MaximumExecutionTimeExceeded")

    def _begin_eviction(self, run: JobRun, why: str) -> None:
        """Suspend the job: pending pods go at once, running ones after the grace period."""
        if run.admitted_phase_since is not None:
            # Kueue accumulates the time a workload spent Admitted across evictions.
            run.past_execution_seconds += self.now - run.admitted_phase_since
            run.admitted_phase_since = None
        run.state = JobState.EVICTING
        if run.key in self.unplaced:
            del self.unplaced[run.key]
            if run.unplaced_since is not None:
                run.unplaced_seconds += self.now - run.unplaced_since
                run.unplaced_since = None
        grace = self.scenario.spec.pods.shutdown_seconds
        has_pods = any(pod.node is not None for pod in run.pods)
        delay = grace if has_pods else 0.0
        self.events.push(self.now + delay, EventKind.POD_TERMINATED, (run.key, run.generation, why))

    def _complete_eviction(self, run: JobRun, why: str) -> None:
        if run.started_at is not None and run.state in (JobState.RUNNING, JobState.EVICTING):
            elapsed = self.now - run.started_at
            run.run_seconds += elapsed
            run.lost_seconds += elapsed * run.accounting
            run.started_at = None
        run.remaining = run.job.duration
        self._release_pods(run)
        self._account_release(run)
        run.generation += 1
        run.state = JobState.PENDING
        requeue_at: float | None = None
        queue_time: float | None = None
        if why == "PodsReadyTimeout":
            requeue_at, queue_time = self._pods_ready_backoff(run)
            if requeue_at is None and queue_time is None:
                return
        elif why == "MaximumExecutionTimeExceeded":
            self._deactivate(run, why, f"The maximum execution time ({run.job.maximum_execution_seconds:g}s) "
                             "exceeded")
            return
        elif why == "AdmissionCheck":
            # The queue-order timestamp of a workload evicted by an admission check is its eviction time.
            requeue_at, queue_time = run.check_requeue_at, self.now
        target = self.engine.finish_eviction(run.key, now=self.now, requeue_at=requeue_at, new_queue_time=queue_time)
        if requeue_at is not None and requeue_at > self.now:
            self.events.push(requeue_at, EventKind.BACKOFF_EXPIRED, (run.key, run.generation))
        self._requeue_later(target)
        self._wake_scheduler()
        self._wake_placement()

    def _pods_ready_backoff(self, run: JobRun) -> tuple[float | None, float | None]:
        strategy = self.scenario.spec.kueue.wait_for_pods_ready.requeuing_strategy
        workload = run.workload
        workload.requeue_count += 1
        limit = strategy.backoff_limit_count
        if limit is not None and workload.requeue_count > limit:
            self._deactivate(run, "RequeuingLimitExceeded",
                             f"evicted {workload.requeue_count - 1} times by waitForPodsReady; backoffLimitCount "
                             f"is {limit}; last time: {run.message}")
            return None, None
        # NOTE: Kueue adds a small random jitter to this backoff; gpuplane leaves it out to stay deterministic.
        exponent = min(workload.requeue_count - 1, 62)
        backoff = min(strategy.backoff_base_seconds * float(2**exponent), float(strategy.backoff_max_seconds))
        queue_time = self.now if strategy.timestamp == "Eviction" else workload.created
        return self.now + backoff, queue_time

    def _on_pods_ready_timeout(self, payload: tuple[str, int]) -> None:
        key, generation = payload
        run = self.runs[key]
        if run.generation != generation or run.state != JobState.ADMITTED:
            return
        run.pods_ready_evictions += 1
        run.reason = "PodsReadyTimeout"
        pending = next(p for p in run.pods if p.node is None)
        run.message = (self.nodes.why_unplaceable(pending.request) if self.devices is None
                       else self.devices.why_unplaceable(run, pending))
        self._begin_eviction(run, "PodsReadyTimeout")

    def _on_backoff_expired(self, payload: tuple[str, int]) -> None:
        key, generation = payload
        run = self.runs[key]
        if run.generation != generation or run.state != JobState.PENDING:
            return
        self.engine.submit(run.workload, now=self.now)
        self._wake_scheduler()

    def _on_requeue(self, target: str) -> None:
        self._requeue_pending.discard(target)
        if self.engine.requeue_inadmissible(target, now=self.now):
            self._wake_scheduler()

    def _on_afs_sample(self, _: object) -> None:
        self.engine.afs_sample(now=self.now)
        afs = self.engine.config.admission_fair_sharing
        if afs is not None and self.events:
            self.events.push(self.now + afs.usage_sampling_interval_seconds, EventKind.AFS_SAMPLE)
            self._wake_scheduler()

    # --- results ----------------------------------------------------------------------------

    def _result(self, start: float) -> SimulationResult:
        for run in self.runs.values():
            if run.state == JobState.PENDING:
                # The last scheduling attempt explains a pending workload better than an earlier eviction.
                status = self.engine.pending_status(run.workload)
                if status.reason or not run.reason:
                    run.reason = status.reason or "Pending"
                    run.message = status.explanation()
                    run.flavor_reasons = dict(status.flavors)
            if run.unplaced_since is not None:
                run.unplaced_seconds += self.now - run.unplaced_since
                run.unplaced_since = None
        for account in self.queues.values():
            account.advance(self.now)
        return SimulationResult(
            runs=list(self.runs.values()),
            queues=self.queues,
            cluster_capacity=self.capacity,
            accounting_resource=self.resource,
            start=start,
            end=self.now,
            allocated_seconds=self.allocated_seconds,
            unplaced_job_seconds=self.unplaced_job_seconds,
            max_unplaced_jobs=self.max_unplaced,
            cycles=self.cycles,
            preemptions=self.preemption_count,
            tenants=dict(sorted(self.tenants.items())),
            notes=self.notes,
            devices=self.devices.report(self.now) if self.devices is not None else None,
        )

    def _check_invariants(self) -> None:
        """Assert what must always hold; used by tests on real traces."""
        state = self.engine.state
        for queue in state.cluster_queues.values():
            for fr, used in queue.usage.items():
                quota = queue.quota(fr)
                if quota.borrowing_limit is not None and queue.parent is not None:
                    ceiling = quota.nominal + quota.borrowing_limit
                    if used > ceiling + queue.local_quota(fr):
                        raise SimulationError(f"ClusterQueue {queue.name} uses {used} of {fr}, above nominal plus "
                                              f"borrowing limit {ceiling}")
                if queue.parent is None and used > quota.nominal:
                    raise SimulationError(f"ClusterQueue {queue.name} uses {used} of {fr}, above nominal "
                                          f"{quota.nominal} without a cohort")
        for root in state.roots():
            for fr, used in root.usage.items():
                if used > root.subtree.get(fr, 0):
                    raise SimulationError(f"cohort {root.name} uses {used} of {fr}, above its subtree quota")
        for node in self.nodes.nodes.values():
            for resource, free in node.free.items():
                if free < 0:
                    raise SimulationError(f"node {node.name} is over-allocated on {resource} ({free} free)")
        if self.devices is not None:
            self.devices.check_invariants()


def _accounting_usage(workload: Workload, resource: str) -> int:
    return sum(amount for (_, res), amount in workload.usage.items() if res == resource)


def _nominal(queue: ClusterQueue, resource: str) -> int:
    return sum(quota.nominal for (_, res), quota in queue.quotas.items() if res == resource)


def _accelerators(resource: str) -> Sequence[str]:
    defaults = ("nvidia.com/gpu", "amd.com/gpu")
    return (resource, *[r for r in defaults if r != resource])


def _node_state(node: Node) -> NodeState:
    allocatable: dict[str, int] = {}
    for name, quantity in node.allocatable().items():
        allocatable[name] = resource_amount(name, quantity)
    return NodeState(name=node.name, labels=dict(node.metadata.labels), taints=tuple(node.spec.taints),
                     allocatable=allocatable, ready=node.is_ready(), schedulable=not node.spec.unschedulable)


def tenants_of(runs: Iterable[JobRun]) -> Mapping[str, list[JobRun]]:
    grouped: dict[str, list[JobRun]] = {}
    for run in runs:
        grouped.setdefault(run.job.tenant, []).append(run)
    return grouped
