"""``gpuplane simulate``: replay a trace on one or two platforms and report per tenant.

With no arguments it runs the bundled example: the Microsoft Philly trace on
a platform whose virtual clusters are ClusterQueues, once isolated and once
in one cohort that lends idle quota, at one third of the recorded size so
that queues form.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, cast

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from gpuplane.decisions.quota.scheduler import CycleResult
from gpuplane.model.errors import Location, SpecError, TraceError
from gpuplane.model.manifests import ObjectSet
from gpuplane.model.objects.kueue import LocalQueue, Workload
from gpuplane.model.platform.load import load_platform_objects
from gpuplane.model.scenario import Scenario, load_scenario
from gpuplane.model.trace import Trace
from gpuplane.model.traces import TraceFormat, detect_format, load_trace
from gpuplane.model.traces.philly import bundled_philly_path
from gpuplane.sim.metrics import job_records, summarize
from gpuplane.sim.simulator import SimulationResult, Simulator
from gpuplane.surfaces.outputs import write_json, write_tree

__all__ = ["RunSpec", "bundled_example", "run_simulation", "simulate_command"]

HOUR = 3600.0


def example_path(*parts: str) -> Path:
    """Path of a file of the bundled examples."""
    return Path(str(resources.files("gpuplane").joinpath("examples", *parts)))


@dataclass
class RunSpec:
    """One simulation to run: a platform (any input form), its label, and where it came from."""

    label: str
    platform: Path


def bundled_example(size: str) -> tuple[RunSpec, RunSpec, Path]:
    if size not in ("reduced", "recorded"):
        raise SpecError(problem=f"Unknown size {size!r}.", allowed="reduced, recorded",
                        location=Location(field="--size"))
    isolated = RunSpec("isolated", example_path("philly", size, "isolated.yaml"))
    cohort = RunSpec("cohort", example_path("philly", size, "cohort.yaml"))
    return isolated, cohort, example_path("philly", "scenario.yaml")


class _ProgressReporter:
    def __init__(self, progress: Progress | None, task: Any, total: int) -> None:
        self.progress = progress
        self.task = task
        self.total = total

    def on_progress(self, now: float, finished: int, total: int) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=finished)

    def on_cycle(self, now: float, result: CycleResult) -> None:
        return None


def _default_mapping(objects: ObjectSet, trace: Trace, scenario: Scenario) -> Scenario:
    """Fill tenant mapping gaps: a tenant maps to the LocalQueue in a namespace of its own name."""
    mapping = scenario.spec.tenant_mapping
    local_queues = [lq.key for lq in objects.of(LocalQueue)]
    tenants = dict(mapping.tenants)
    for tenant in trace.tenants():
        if tenant in tenants:
            continue
        matches = [key for key in local_queues if key.split("/", 1)[0] == tenant]
        if len(matches) == 1:
            tenants[tenant] = matches[0]
    default = mapping.default
    if default is None and len(local_queues) == 1:
        default = local_queues[0]
    updated = mapping.model_copy(update={"tenants": tenants, "default": default})
    spec = scenario.spec.model_copy(update={"tenant_mapping": updated})
    return scenario.model_copy(update={"spec": spec})


def _check_mapping(objects: ObjectSet, trace: Trace, scenario: Scenario, source: str) -> None:
    mapping = scenario.spec.tenant_mapping
    queues = {lq.key for lq in objects.of(LocalQueue)}
    unmapped = sorted(t for t in trace.tenants() if t not in mapping.tenants and mapping.default is None
                      and not any(job.queue for job in trace.jobs if job.tenant == t))
    if unmapped:
        raise SpecError(
            problem=f"{len(unmapped)} trace tenant(s) map to no LocalQueue: {', '.join(unmapped[:10])}.",
            location=Location(source=source, field="spec.tenantMapping"),
            allowed=f"LocalQueues of the platform: {', '.join(sorted(queues)[:10]) or '(none)'}",
            hint="Add them under spec.tenantMapping.tenants of the scenario, or set spec.tenantMapping.default.")
    missing = sorted({q for q in [*mapping.tenants.values(), mapping.default] if q and q not in queues})
    if missing:
        raise SpecError(
            problem=f"The tenant mapping names LocalQueue(s) the platform does not have: {', '.join(missing)}.",
            location=Location(source=source, field="spec.tenantMapping"),
            allowed=f"LocalQueues of the platform: {', '.join(sorted(queues)[:10]) or '(none)'}",
            hint="Fix the mapping or add the tenants to the platform.")


def run_simulation(objects: ObjectSet, trace: Trace, scenario: Scenario, *, console: Console | None,
                   label: str) -> tuple[SimulationResult, float]:
    """Run one simulation with a progress bar; return the result and the wall seconds it took."""
    started = time.perf_counter()
    if console is not None:
        columns = (TextColumn(f"[bold]{label}[/]"), BarColumn(), TextColumn("{task.completed}/{task.total} jobs"),
                   TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task(label, total=len(trace.jobs))
            result = Simulator(objects, trace, scenario, reporter=_ProgressReporter(progress, task,
                                                                                    len(trace.jobs))).run()
    else:
        result = Simulator(objects, trace, scenario).run()
    return result, time.perf_counter() - started


def _hours(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < HOUR:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / HOUR:.1f}h"


def _cell(values: list[str]) -> str:
    return " → ".join(values) if len(set(values)) > 1 else values[0]


def print_report(console: Console, summaries: list[tuple[str, dict[str, Any]]]) -> None:
    """One table per tenant row with the runs side by side (``a → b`` where they differ)."""
    labels = [label for label, _ in summaries]
    title = " vs ".join(labels)
    table = Table(title=f"Per tenant ({title})", show_lines=False, header_style="bold")
    for column in ("ClusterQueue", "jobs", "GPU-h", "nominal", "wait p50", "wait p95", "wait max",
                   "borrowed GPU-h", "preempted", "lost GPU-h", "never started"):
        table.add_column(column, justify="left" if column == "ClusterQueue" else "right")
    rows = [{row["clusterQueue"]: row for row in summary["clusterQueues"]} for _, summary in summaries]
    names = sorted(set().union(*[set(r) for r in rows]))
    for name in names:
        cells: dict[str, list[str]] = {key: [] for key in ("jobs", "gpu", "nominal", "p50", "p95", "max",
                                                             "borrowed", "preempted", "lost", "never")}
        for per_run in rows:
            row = per_run.get(name)
            if row is None:
                for values in cells.values():
                    values.append("-")
                continue
            wait = row["waitSeconds"]
            cells["jobs"].append(f"{row['jobs']:,}")
            cells["gpu"].append(f"{row['gpuHours']:,.0f}")
            cells["nominal"].append(str(row["nominalGpus"]))
            cells["p50"].append(_hours(wait["p50"]))
            cells["p95"].append(_hours(wait["p95"]))
            cells["max"].append(_hours(wait["max"]))
            cells["borrowed"].append(f"{row['borrowedGpuHours']:,.0f}")
            cells["preempted"].append(str(row["preemptions"]))
            cells["lost"].append(f"{row['lostGpuHours']:,.0f}")
            cells["never"].append(str(row["neverStarted"]))
        table.add_row(name, *[_cell(v) for v in cells.values()])
    console.print(table)

    cluster = Table(title="Cluster", header_style="bold")
    cluster.add_column("figure")
    for label in labels:
        cluster.add_column(label, justify="right")
    figures: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("GPUs", lambda s: f"{s['cluster']['capacity']:,}"),
        ("jobs finished", lambda s: f"{s['finished']:,} of {s['jobs']:,}"),
        ("GPU utilisation", lambda s: f"{100 * s['cluster']['utilization']:.1f}%"),
        ("wait p50 / p95", lambda s: f"{_hours(s['cluster']['waitSeconds']['p50'])} / "
                                     f"{_hours(s['cluster']['waitSeconds']['p95'])}"),
        ("admitted, not yet placed (mean / max jobs)",
         lambda s: f"{s['cluster']['meanAdmittedNotPlacedJobs']:.1f} / {s['cluster']['maxAdmittedNotPlacedJobs']}"),
        ("jobs that waited for a node", lambda s: f"{s['cluster']['jobsThatWaitedForPlacement']:,}"),
        ("evicted by waitForPodsReady", lambda s: f"{s['cluster']['podsReadyEvictions']:,}"),
        ("preemptions", lambda s: f"{s['cluster']['preemptions']:,}"),
        ("GPU-hours lost to preemption", lambda s: f"{s['cluster']['lostGpuHours']:,.0f}"),
        ("scheduling cycles", lambda s: f"{s['cluster']['schedulingCycles']:,}"),
    ]
    for name, value in figures:
        cluster.add_row(name, *[value(summary) for _, summary in summaries])
    console.print(cluster)


def print_device_report(console: Console, label: str, devices: dict[str, Any]) -> None:
    """Print where jobs with claims ran, per device model and per claim kind, and why others did not."""
    models = Table(title=f"Devices by model ({label})", header_style="bold")
    for column in ("device model", "devices", "jobs", "busy device-h", "busy"):
        models.add_column(column, justify="left" if column == "device model" else "right")
    for row in devices["models"]:
        models.add_row(row["model"], f"{row['devices']:,}", f"{row['jobs']:,}", f"{row['busyDeviceHours']:,.0f}",
                       f"{100 * row['utilization']:.1f}%")
    console.print(models)

    claims = Table(title=f"Jobs by claim template ({label})", header_style="bold")
    for column in ("claims", "jobs", "ran on (jobs)", "did not run (jobs)"):
        claims.add_column(column, justify="right" if column == "jobs" else "left")
    for row in devices["claims"]:
        ran = ", ".join(f"{model} ({count})" for model, count in sorted(row["models"].items())) or "-"
        missed = ", ".join(f"{reason} ({count})" for reason, count in sorted(row["notRun"].items())) or "-"
        claims.add_row(row["claims"], f"{row['jobs']:,}", ran, missed)
    console.print(claims)


def _load_trace(trace_path: Path | None, trace_format: str | None, scenario: Scenario) -> Trace:
    source = scenario.spec.trace
    path = trace_path or (Path(source.path) if source.path else None) or bundled_philly_path()
    fmt = trace_format or source.format
    if not path.exists():
        raise TraceError(problem="The trace file does not exist.", location=Location(source=str(path)),
                         hint="Pass --trace PATH to a Philly CSV, a native CSV/Parquet trace or an Alibaba pod list.")
    # Only the Philly reader splits jobs into pods, so only it takes gpusPerNode.
    name = detect_format(path) if fmt == "auto" else fmt
    options = {"gpus_per_node": source.gpus_per_node} if name == "philly" else {}
    return load_trace(path, format=cast(TraceFormat, name), **options)


def _cluster_state_only(platform: Path | None, trace_path: Path | None, scenario: Scenario,
                        cluster: str | None) -> bool:
    """Tell whether to run a cluster dump's Workloads alone: no trace was named and the input has Workloads."""
    if platform is None or trace_path is not None or scenario.spec.trace.path:
        return False
    return bool(load_platform_objects(platform, cluster=cluster).of(Workload))


def simulate_command(*, platform: Path | None, trace_path: Path | None, trace_format: str | None,
                     scenario_path: Path | None, compare: Path | None, out: Path | None, size: str,
                     cluster: str | None, until: float | None, console: Console, quiet: bool) -> int:
    """Run the ``simulate`` command; return the exit code."""
    if platform is None:
        first, second, default_scenario = bundled_example(size)
        runs = [first, second] if compare is None else [first, RunSpec("compare", compare)]
        scenario_path = scenario_path or default_scenario
        sizes = {"reduced": "each virtual cluster at one third of its recorded nodes, rounded up, so that queues "
                            "form; pass --size recorded for the recorded size",
                 "recorded": "the recorded virtual-cluster sizes (the trace loads it lightly)"}
        console.print(f"Bundled example: the Microsoft Philly trace (CC BY 4.0) on its virtual clusters as "
                      f"ClusterQueues, {sizes[size]}. The same trace runs isolated and in one cohort.")
    else:
        runs = [RunSpec(platform.stem, platform)]
        if compare is not None:
            runs.append(RunSpec(compare.stem if compare.stem != platform.stem else "compare", compare))
    scenario = load_scenario(scenario_path) if scenario_path else Scenario()
    if until is not None:
        scenario = scenario.model_copy(update={"spec": scenario.spec.model_copy(update={"until": until})})
    if _cluster_state_only(platform, trace_path, scenario, cluster):
        trace = Trace(jobs=(), source="no trace (the Workloads of the cluster state only)")
    else:
        trace = _load_trace(trace_path, trace_format, scenario)
    console.print(f"Trace: {trace.source}: {len(trace.jobs):,} jobs from {len(trace.tenants())} tenants.")
    for note in trace.notes:
        console.print(f"  {note}")

    results = []
    for spec in runs:
        objects = load_platform_objects(spec.platform, cluster=cluster)
        for warning in objects.warnings:
            console.print(f"[yellow]warning:[/] {warning}", markup=True, highlight=False)
        run_scenario = _default_mapping(objects, trace, scenario)
        _check_mapping(objects, trace, run_scenario, str(scenario_path or spec.platform))
        result, seconds = run_simulation(objects, trace, run_scenario, console=None if quiet else console,
                                         label=spec.label)
        summary = summarize(result)
        summary["platform"] = str(spec.platform)
        summary["label"] = spec.label
        summary["wallSeconds"] = seconds
        console.print(f"{spec.label}: simulated {result.end - result.start:,.0f} s of cluster time in "
                      f"{seconds:.1f} s ({len(trace.jobs) / seconds:,.0f} jobs/s, {result.cycles:,} cycles).")
        results.append((spec, result, summary))

    print_report(console, [(spec.label, summary) for spec, _, summary in results])
    for spec, _, summary in results:
        if "devices" in summary:
            print_device_report(console, spec.label, summary["devices"])
    if out is not None:
        _write_results(out, results)
        console.print(f"Wrote per-workload records and summaries to {out}")
    return 0


def _write_results(out: Path, results: list[tuple[RunSpec, SimulationResult, dict[str, Any]]]) -> None:
    def fill(folder: Path) -> None:
        labels = [spec.label for spec, _, _ in results]
        single = len(results) == 1
        for spec, result, summary in results:
            target = folder if single else folder / _safe(spec.label, labels)
            target.mkdir(parents=True, exist_ok=True)
            job_records(result).write_parquet(target / "workloads.parquet")
            write_json(target / "summary.json", summary)
        if not single:
            write_json(folder / "comparison.json", {spec.label: summary for spec, _, summary in results})
    write_tree(out, fill)


def _safe(label: str, labels: list[str]) -> str:
    name = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in label) or "run"
    if labels.count(label) > 1:
        name = f"{name}-{labels.index(label)}"
    return name
