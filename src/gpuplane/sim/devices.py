"""DRA in the simulation: quota for claims, device allocation at placement, and device records.

:class:`DeviceSimulation` is what the simulator calls for jobs whose pods
carry claims (ResourceClaimTemplate names in the trace):

- when a job is submitted, :meth:`~DeviceSimulation.charge` adds to each pod
  set the logical resources Kueue charges for the claims
  (:mod:`gpuplane.decisions.devices.quota`), or gives Kueue's reason why the
  workload is inadmissible;
- when a pod is placed, :meth:`~DeviceSimulation.place` runs the allocator on
  the nodes that fit otherwise (:mod:`gpuplane.decisions.placement.devices`)
  and marks the devices in use until :meth:`~DeviceSimulation.release`;
- it records which nodes and devices each job used and integrates busy
  device-seconds per device model, for the results.

Each pod gets one claim per template it names, in the pod's namespace, as the
control plane creates them. Pods with the same templates in one namespace
share claim objects: the allocator does not keep them, and the devices each
pod holds are kept here.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gpuplane.decisions.devices.allocator import Allocator
from gpuplane.decisions.devices.cel import CelError, DeviceData
from gpuplane.decisions.devices.pools import DeviceID, Features
from gpuplane.decisions.devices.quota import ClusterDevices, DeviceClassMappings, charge_claims
from gpuplane.decisions.placement.devices import DevicePlacement
from gpuplane.decisions.placement.nodes import NodeIndex, NodeState, ScoringStrategy
from gpuplane.decisions.quota.workload import PodSetRequest
from gpuplane.model.errors import Location, SimulationError, TraceError
from gpuplane.model.manifests import ObjectSet
from gpuplane.model.objects.base import ObjectMeta
from gpuplane.model.objects.resource import (
    DeviceClass,
    ResourceClaim,
    ResourceClaimSpec,
    ResourceClaimTemplate,
    ResourceSlice,
)
from gpuplane.model.scenario import Scenario
from gpuplane.model.trace import Trace, TraceJob

if TYPE_CHECKING:
    from gpuplane.sim.records import JobRun, PodRun

__all__ = ["DeviceReport", "DeviceSimulation", "JobDevices"]


@dataclass(slots=True)
class JobDevices:
    """Nodes and devices of one job's latest run, in binding order."""

    generation: int
    nodes: list[str] = field(default_factory=list)
    devices: list[DeviceID] = field(default_factory=list)


@dataclass
class DeviceReport:
    """Device figures of a finished simulation, per job and per device model."""

    jobs: dict[str, JobDevices]
    """Per workload key."""
    models: dict[DeviceID, str]
    """Device model (product name) of every device the slices publish."""
    fleet: dict[str, int]
    """Devices per model."""
    busy_seconds: dict[str, float]
    """Device-seconds held by pods, per model."""


@dataclass(frozen=True, slots=True)
class _PodClaims:
    claims: tuple[ResourceClaim, ...]
    key: Hashable


class DeviceSimulation:
    """The DRA side of one simulation; build it with :meth:`build`."""

    def __init__(self, *, slices: Sequence[ResourceSlice], classes: Sequence[DeviceClass],
                 templates: Sequence[ResourceClaimTemplate], scenario: Scenario, nodes: NodeIndex) -> None:
        kueue = scenario.spec.kueue
        self.charging = kueue.dra_enabled
        self.mappings = DeviceClassMappings.build(
            (mapping.name, mapping.device_class_names) for mapping in kueue.resources.device_class_mappings)
        self.logical = frozenset(self.mappings.resources.values())
        self.templates = {template.key: template for template in templates}
        self.allocator = Allocator(slices, classes, features=Features())
        self.cluster_devices = ClusterDevices(slices, self.allocator.classes, self.allocator.engine)
        self.placement = DevicePlacement(self.allocator, nodes.nodes.values(),
                                         strategy=ScoringStrategy(scenario.spec.placement.scoring_strategy))
        self.nodes = nodes
        self.models = {device.id: _model_name(device.data.driver, device.device.attributes)
                       for device in self.cluster_devices.devices}
        self.fleet: dict[str, int] = {}
        for model in self.models.values():
            self.fleet[model] = self.fleet.get(model, 0) + 1
        self.busy_seconds = dict.fromkeys(self.fleet, 0.0)
        self.records: dict[str, JobDevices] = {}
        self.attempt_errors: dict[PodRun, str] = {}
        self._held: dict[PodRun, tuple[tuple[DeviceID, ...], float]] = {}
        self._charges: dict[tuple[Hashable, ...], tuple[PodSetRequest, Any, str]] = {}
        self._claims: dict[tuple[str, tuple[str, ...]], _PodClaims] = {}

    @classmethod
    def build(cls, objects: ObjectSet, trace: Trace, scenario: Scenario, nodes: NodeIndex,
              namespace_of: Callable[[TraceJob], str]) -> DeviceSimulation | None:
        """Return the DRA side of a simulation, or None when neither the platform nor the trace uses DRA.

        Raises :class:`TraceError` for a job that names a claim template its namespace does not have.
        """
        slices = objects.of(ResourceSlice)
        uses_claims = any(pod_set.claims for job in trace.jobs for pod_set in job.pod_sets)
        if not slices and not uses_claims:
            return None
        try:
            simulation = cls(slices=slices, classes=objects.of(DeviceClass),
                             templates=objects.of(ResourceClaimTemplate), scenario=scenario, nodes=nodes)
        except ValueError as error:
            raise SimulationError(f"the device inventory cannot be simulated: {error}") from None
        simulation.check_templates(trace, namespace_of)
        return simulation

    def check_templates(self, trace: Trace, namespace_of: Callable[[TraceJob], str]) -> None:
        """Raise :class:`TraceError` for the first job naming a claim template missing from its namespace."""
        for job in trace.jobs:
            namespace = namespace_of(job)
            for pod_set in job.pod_sets:
                for name in pod_set.claims:
                    if f"{namespace}/{name}" not in self.templates:
                        raise self._missing_template(trace, job, namespace, name)

    def _missing_template(self, trace: Trace, job: TraceJob, namespace: str, name: str) -> TraceError:
        known = sorted(key.partition("/")[2] for key in self.templates if key.startswith(f"{namespace}/"))
        return TraceError(
            problem=f"Job {job.id!r} names claim template {name!r}, which namespace {namespace!r} does not have.",
            location=Location(source=trace.source, line=job.line, field="claims"), value=name,
            allowed=", ".join(known) or "(no ResourceClaimTemplate in that namespace)",
            hint="Add the template to the platform (spec.claimTemplates, or a ResourceClaimTemplate "
                 "manifest in that namespace), or fix the name in the trace.")

    # --- quota --------------------------------------------------------------------------------

    def charge(self, job: TraceJob, namespace: str, pod_sets: list[PodSetRequest],
               shapes: tuple[Any, ...]) -> tuple[list[PodSetRequest], tuple[Any, ...], str]:
        """Add what Kueue charges for each pod set's claims; return pod sets, shapes and any problem.

        The problem is Kueue's reason the workload is inadmissible, empty when it is not.
        """
        if not self.charging:
            return pod_sets, shapes, ""
        charged, charged_shapes = list(pod_sets), list(shapes)
        for index, (trace_pod_set, request) in enumerate(zip(job.pod_sets, pod_sets, strict=True)):
            if not trace_pod_set.claims:
                continue
            key = (namespace, trace_pod_set.claims, request.shape())
            found = self._charges.get(key)
            if found is None:
                found = self._charges[key] = self._charge(namespace, trace_pod_set.claims, request)
            if found[2]:
                return pod_sets, shapes, found[2]
            charged[index], charged_shapes[index] = found[0], found[1]
        return charged, tuple(charged_shapes), ""

    def _charge(self, namespace: str, claims: tuple[str, ...],
                request: PodSetRequest) -> tuple[PodSetRequest, Any, str]:
        specs = [(name, self._template_spec(namespace, name)) for name in claims]
        result = charge_claims(specs, self.mappings, self.cluster_devices)
        if result.problem:
            return request, None, result.problem
        requests = dict(request.requests)
        for resource, amount in result.requests.items():
            requests[resource] = requests.get(resource, 0) + amount
        updated = PodSetRequest(name=request.name, count=request.count, requests=requests,
                                min_count=request.min_count, tolerations=request.tolerations,
                                node_selector=request.node_selector, affinity_terms=request.affinity_terms)
        return updated, updated.shape(), ""

    def _template_spec(self, namespace: str, name: str) -> ResourceClaimSpec:
        return self.templates[f"{namespace}/{name}"].spec.spec

    def node_requests(self, requests: Mapping[str, int]) -> Mapping[str, int]:
        """Drop the logical resources of device class mappings, which no node has as allocatable."""
        if not any(resource in self.logical for resource in requests):
            return requests
        return {resource: amount for resource, amount in requests.items() if resource not in self.logical}

    def capacity(self, resource: str) -> int:
        """Count the devices whose classes are mapped to ``resource``, each device once."""
        classes = [name for name, mapped in self.mappings.resources.items() if mapped == resource]
        counted: set[int] = set()
        for name in classes:
            device_class = self.allocator.classes.get(name)
            if device_class is None:
                continue
            expressions = [s.cel.expression for s in device_class.spec.selectors if s.cel is not None]
            for index, device in enumerate(self.cluster_devices.devices):
                if index not in counted and _matches_all(self.allocator, expressions, device.data):
                    counted.add(index)
        return len(counted)

    # --- placement ----------------------------------------------------------------------------

    def place(self, run: JobRun, pod: PodRun, now: float) -> NodeState | None:
        """Return the node for ``pod``, with its devices held if it has claims; None when nothing fits."""
        pod_claims = self._pod_claims(run, pod)
        if pod_claims is None:
            return self.nodes.find_node(pod.request)
        fit = self.placement.find(self.nodes.feasible_nodes(pod.request), pod_claims.claims, pod_claims.key)
        if fit.attempt_error:
            self.attempt_errors[pod] = fit.attempt_error
        if fit.node is None:
            return None
        devices = tuple(sorted(fit.devices()))
        self.placement.hold(devices)
        self._held[pod] = (devices, now)
        self.attempt_errors.pop(pod, None)
        self._record(run, fit.node.name, devices)
        return fit.node

    def release(self, pod: PodRun, now: float) -> None:
        held = self._held.pop(pod, None)
        self.attempt_errors.pop(pod, None)
        if held is None:
            return
        devices, since = held
        self.placement.release(devices)
        for device in devices:
            model = self.models.get(device)
            if model is not None:
                self.busy_seconds[model] += now - since

    def accounted(self, run: JobRun, pod: PodRun, resource: str) -> int:
        """Return what one pod of ``run`` requests of ``resource``, claims included."""
        return run.workload.pod_sets[pod.pod_set].requests.get(resource, 0)

    def why_unplaceable(self, run: JobRun, pod: PodRun) -> str:
        pod_claims = self._pod_claims(run, pod)
        if pod_claims is None:
            return self.nodes.why_unplaceable(pod.request)
        error = self.attempt_errors.get(pod)
        if error:
            return f"the device allocation attempt failed: {error}"
        candidates = list(self.nodes.feasible_nodes(pod.request))
        if not candidates:
            return self.nodes.why_unplaceable(pod.request)
        return "no node can allocate the pod's claims: " + self.placement.why_unplaceable(
            candidates, pod_claims.claims)

    def _pod_claims(self, run: JobRun, pod: PodRun) -> _PodClaims | None:
        names = run.job.pod_sets[pod.pod_set].claims
        if not names:
            return None
        namespace = run.workload.namespace
        found = self._claims.get((namespace, names))
        if found is None:
            claims = tuple(self._claim(namespace, name, index) for index, name in enumerate(names))
            found = self._claims[(namespace, names)] = _PodClaims(claims, (namespace, names))
        return found

    def _claim(self, namespace: str, name: str, index: int) -> ResourceClaim:
        # Pod claim names must differ, so a template named twice gets a second name.
        claim_name = name if index == 0 else f"{name}-{index}"
        return ResourceClaim(metadata=ObjectMeta(name=claim_name, namespace=namespace),
                             spec=self._template_spec(namespace, name))

    def _record(self, run: JobRun, node: str, devices: tuple[DeviceID, ...]) -> None:
        record = self.records.get(run.key)
        if record is None or record.generation != run.generation:
            record = self.records[run.key] = JobDevices(run.generation)
        if node not in record.nodes:
            record.nodes.append(node)
        record.devices.extend(devices)

    # --- results ------------------------------------------------------------------------------

    def report(self, now: float) -> DeviceReport:
        """Return the device figures, counting devices still held as busy until ``now``."""
        busy = dict(self.busy_seconds)
        for devices, since in self._held.values():
            for device in devices:
                model = self.models.get(device)
                if model is not None:
                    busy[model] += now - since
        return DeviceReport(jobs=dict(self.records), models=dict(self.models), fleet=dict(self.fleet),
                            busy_seconds=busy)

    def check_invariants(self) -> None:
        """Raise SimulationError when a device is held twice or the in-use set disagrees with the pods."""
        held: set[DeviceID] = set()
        for devices, _ in self._held.values():
            for device in devices:
                if device in held:
                    raise SimulationError(f"device {device} is held by two pods")
                held.add(device)
        if held != self.placement.in_use:
            raise SimulationError(f"{len(held ^ self.placement.in_use)} device(s) differ between the pods' "
                                  "devices and the devices in use")


def _model_name(driver: str, attributes: Mapping[str, Any]) -> str:
    """Name a device's model: its productName, with the MIG profile for a partition."""
    product = attributes.get("productName")
    name = str(product.value) if product is not None and product.value is not None else driver
    profile = attributes.get("profile")
    if profile is not None and profile.value is not None:
        name = f"{name} MIG {profile.value}"
    return name


def _matches_all(allocator: Allocator, expressions: Sequence[str], device: DeviceData) -> bool:
    try:
        return all(allocator.engine.matches(expression, device) for expression in expressions)
    except CelError:
        # A class whose selector fails on a device cannot allocate it, so the device is not counted.
        return False
