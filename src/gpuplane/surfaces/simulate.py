"""``gpuplane simulate``: replay a trace on one or two platforms and report per tenant.

With no arguments it runs the bundled example: the Microsoft Philly trace on
a platform whose virtual clusters are ClusterQueues. The trace runs twice,
once isolated and once in one cohort that lends idle quota, at one third of
the recorded size so that queues form.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, cast

from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from gpuplane.decisions.quota.scheduler import CycleResult
from gpuplane.model.errors import InputError, Location, SpecError, TraceError
from gpuplane.model.manifests import ObjectSet
from gpuplane.model.objects.kueue import LocalQueue, Workload
from gpuplane.model.platform.load import load_platform_objects
from gpuplane.model.scenario import Scenario, load_scenario, parse_duration
from gpuplane.model.trace import Trace
from gpuplane.model.traces import TraceFormat, detect_format, load_trace
from gpuplane.model.traces.philly import bundled_philly_path
from gpuplane.sim.metrics import job_records, summarize
from gpuplane.sim.simulator import SimulationResult, Simulator
from gpuplane.surfaces.output_guard import check_output_folder, write_marker
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


def _check_mapping(objects: ObjectSet, trace: Trace, scenario: Scenario, source: str | None) -> None:
    mapping = scenario.spec.tenant_mapping
    queues = {lq.key for lq in objects.of(LocalQueue)}
    where = Location(source=source, field="spec.tenantMapping") if source else Location(field="--scenario")
    known = f"LocalQueues of the platform: {_first(sorted(queues))}"
    unmapped = sorted(t for t in trace.tenants() if t not in mapping.tenants and mapping.default is None
                      and not any(job.queue for job in trace.jobs if job.tenant == t))
    if unmapped:
        fix = ("Add them under spec.tenantMapping.tenants of the scenario, or set spec.tenantMapping.default."
               if source else "Pass --scenario with a spec.tenantMapping for these tenants.")
        raise SpecError(problem=f"{len(unmapped)} trace tenant(s) map to no LocalQueue: {_first(unmapped)}.",
                        location=where, allowed=known, hint=fix)
    missing = sorted({q for q in [*mapping.tenants.values(), mapping.default] if q and q not in queues})
    if missing:
        raise SpecError(
            problem=f"The tenant mapping names LocalQueue(s) the platform does not have: {_first(missing)}.",
            location=where, allowed=known, hint="Fix the mapping or add the tenants to the platform.")


def _first(names: list[str], count: int = 10) -> str:
    """Join names, saying how many were left out."""
    shown = ", ".join(names[:count]) or "(none)"
    return shown if len(names) <= count else f"{shown} and {len(names) - count} more"


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


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < HOUR:
        return f"{seconds / 60:.0f}m"
    if seconds < 48 * HOUR:
        return f"{seconds / HOUR:.1f}h"
    return f"{seconds / (24 * HOUR):.1f}d"


def _amount(value: float) -> str:
    if abs(value) >= 10_000:
        return f"{value / 1000:,.0f}k"
    return f"{value:,.0f}"


def _per_run_columns(table: Table, metrics: list[str], labels: list[str]) -> None:
    """Add one column per metric and run; two runs are called A and B so that tables stay narrow."""
    for metric in metrics:
        for index in range(len(labels)):
            header = f"{metric}\n{chr(ord('A') + index)}" if len(labels) > 1 else metric
            table.add_column(header, justify="right")


def print_report(console: Console, summaries: list[tuple[str, dict[str, Any]]]) -> None:
    """Print per-tenant tables (waiting, then quota and preemption) and cluster figures, runs side by side."""
    labels = [label for label, _ in summaries]
    if len(labels) > 1:
        console.print("Runs: " + ", ".join(f"{chr(ord('A') + i)} = {label}" for i, label in enumerate(labels)))
    rows = [{row["clusterQueue"]: row for row in summary["clusterQueues"]} for _, summary in summaries]
    console.print(_waits_table(rows, labels))
    console.print(_sharing_table(rows, labels))
    console.print("GPU-h: GPU-hours the tenant's jobs ask for. Waits of jobs that never started count until the "
                  "end of the run. borrowed: GPU-hours held above nominal quota; preempted: times its jobs were "
                  "preempted; lost: GPU-hours of work preempted jobs threw away.", style="dim")
    console.print(_cluster_table(summaries))


def _table(title: str) -> Table:
    return Table(title=title, box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, collapse_padding=True)


def _per_tenant(rows: list[dict[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any], list[dict[str, Any] | None]]]:
    """Each tenant's name, its first row (run-independent figures) and its row in every run."""
    names = sorted(set().union(*[set(r) for r in rows]))
    result = []
    for name in names:
        per_run = [per_run_rows.get(name) for per_run_rows in rows]
        first = next(row for row in per_run if row is not None)
        result.append((name, first, per_run))
    return result


def _cells(per_run: list[dict[str, Any] | None], extract: Callable[[dict[str, Any]], str]) -> list[str]:
    return [extract(row) if row is not None else "-" for row in per_run]


def _waits_table(rows: list[dict[str, dict[str, Any]]], labels: list[str]) -> Table:
    table = _table("Wait from submission to start, per tenant (ClusterQueue)")
    table.add_column("tenant", no_wrap=True)
    table.add_column("jobs", justify="right")
    table.add_column("GPU-h", justify="right")
    _per_run_columns(table, ["p50", "p95", "max"], labels)
    for name, first, per_run in _per_tenant(rows):
        table.add_row(
            name, f"{first['jobs']:,}", _amount(first["demandGpuHours"]),
            *_cells(per_run, lambda r: _duration(r["waitSeconds"]["p50"])),
            *_cells(per_run, lambda r: _duration(r["waitSeconds"]["p95"])),
            *_cells(per_run, lambda r: _duration(r["waitSeconds"]["max"])),
        )
    return table


def _sharing_table(rows: list[dict[str, dict[str, Any]]], labels: list[str]) -> Table:
    table = _table("GPU quota, borrowing and preemption, per tenant (GPUs, GPU-hours)")
    table.add_column("tenant", no_wrap=True)
    table.add_column("nominal", justify="right")
    _per_run_columns(table, ["borrowed", "preempted", "lost"], labels)
    for name, first, per_run in _per_tenant(rows):
        table.add_row(
            name, f"{first['nominalGpus']:,}",
            *_cells(per_run, lambda r: _amount(r["borrowedGpuHours"])),
            *_cells(per_run, lambda r: f"{r['preemptions']:,}"),
            *_cells(per_run, lambda r: _amount(r["lostGpuHours"])),
        )
    return table


_CLUSTER_FIGURES: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
    ("GPUs", lambda s: f"{s['cluster']['capacity']:,}"),
    ("jobs finished", lambda s: f"{s['finished']:,} of {s['jobs']:,}"),
    ("jobs never started", lambda s: f"{sum(q['neverStarted'] for q in s['clusterQueues']):,}"),
    ("GPU utilisation", lambda s: f"{100 * s['cluster']['utilization']:.1f}%"),
    ("wait p50 / p95", lambda s: f"{_duration(s['cluster']['waitSeconds']['p50'])} / "
                                 f"{_duration(s['cluster']['waitSeconds']['p95'])}"),
    ("admitted, not placed: mean / max jobs",
     lambda s: f"{s['cluster']['meanAdmittedNotPlacedJobs']:.2f} / {s['cluster']['maxAdmittedNotPlacedJobs']}"),
    ("jobs that waited for a node", lambda s: f"{s['cluster']['jobsThatWaitedForPlacement']:,}"),
    ("evicted by waitForPodsReady", lambda s: f"{s['cluster']['podsReadyEvictions']:,}"),
    ("preemptions", lambda s: f"{s['cluster']['preemptions']:,}"),
    ("GPU-hours lost to preemption", lambda s: _amount(s["cluster"]["lostGpuHours"])),
    ("scheduling cycles", lambda s: f"{s['cluster']['schedulingCycles']:,}"),
]


def _cluster_table(summaries: list[tuple[str, dict[str, Any]]]) -> Table:
    table = _table("Cluster")
    table.add_column("figure")
    for label, _ in summaries:
        table.add_column(label, justify="right")
    for name, value in _CLUSTER_FIGURES:
        table.add_row(name, *[value(summary) for _, summary in summaries])
    return table


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


@dataclass
class SimulateOptions:
    """The ``simulate`` command line, as given."""

    platform: Path | None
    trace_path: Path | None
    trace_format: str | None
    scenario_path: Path | None
    compare: Path | None
    out: Path | None
    size: str | None
    cluster: str | None
    until: str | None
    quiet: bool


def _option_error(option: str, problem: str, hint: str) -> InputError:
    return InputError(problem=problem, location=Location(field=option), hint=hint)


def _check_options(options: SimulateOptions) -> tuple[list[RunSpec], Path | None, float | None]:
    """Check the options against each other and the file system before any work starts."""
    until = None
    if options.until is not None:
        try:
            until = parse_duration(options.until)
        except ValueError as error:
            raise _option_error("--until", f"{error}.", "Give seconds or a duration such as 36h or 90m.") from None
        if until < 0:
            raise _option_error("--until", f"--until must not be negative, got {options.until}.",
                                "Give a time after the first submission, such as 3600 or 24h.")
    if options.platform is None:
        for given, option in ((options.trace_path, "--trace"), (options.scenario_path, "--scenario"),
                              (options.compare, "--compare"), (options.cluster, "--cluster")):
            if given is not None:
                raise _option_error(option, f"{option} needs a PLATFORM: without one the bundled Philly example "
                                    "runs with its own trace, scenario and platforms.",
                                    f"Pass a platform first: gpuplane simulate PLATFORM {option} ...")
        first, second, bundled_scenario = bundled_example(options.size or "reduced")
        runs = [first, second]
        scenario_path: Path | None = bundled_scenario
    else:
        if options.size is not None:
            raise _option_error("--size", "--size applies to the bundled example only.",
                                "Drop --size, or drop PLATFORM to run the bundled example.")
        runs = [RunSpec(options.platform.stem, options.platform)]
        if options.compare is not None:
            label = options.compare.stem if options.compare.stem != options.platform.stem else "compare"
            runs.append(RunSpec(label, options.compare))
        scenario_path = options.scenario_path
    for path in [*(spec.platform for spec in runs), *[p for p in (scenario_path, options.trace_path) if p]]:
        if not path.exists():
            raise InputError(problem="The file does not exist.", location=Location(source=str(path)),
                             hint="Check the path.")
    if options.out is not None:
        inputs = [spec.platform for spec in runs] + [p for p in (scenario_path, options.trace_path) if p]
        check_output_folder(options.out, inputs=inputs, command="simulate --out")
    return runs, scenario_path, until


def _cluster_state_only(options: SimulateOptions, scenario: Scenario, platforms: list[ObjectSet]) -> bool:
    """Tell whether to run a cluster dump's Workloads alone: no trace was named and the input has Workloads."""
    if options.platform is None or options.trace_path is not None or scenario.spec.trace.path:
        return False
    return any(objects.of(Workload) for objects in platforms)


def simulate_command(options: SimulateOptions, console: Console) -> int:
    """Run the ``simulate`` command; return the exit code."""
    runs, scenario_path, until = _check_options(options)
    if options.platform is None:
        size = options.size or "reduced"
        sizes = {"reduced": "each virtual cluster at one third of its recorded nodes, rounded up, so that queues "
                            "form; pass --size recorded for the recorded size",
                 "recorded": "the recorded virtual-cluster sizes (the trace loads it lightly)"}
        console.print(f"Bundled example: the Microsoft Philly trace (CC BY 4.0) on its virtual clusters as "
                      f"ClusterQueues, {sizes[size]}. The same trace runs isolated and in one cohort.")
    scenario = load_scenario(scenario_path) if scenario_path else Scenario()
    if until is not None:
        scenario = scenario.model_copy(update={"spec": scenario.spec.model_copy(update={"until": until})})
    platforms = []
    for spec in runs:
        objects = load_platform_objects(spec.platform, cluster=options.cluster)
        _print_load_warnings(console, objects)
        platforms.append(objects)
    if _cluster_state_only(options, scenario, platforms):
        trace = Trace(jobs=(), source="no trace (the Workloads of the cluster state only)")
    else:
        trace = _load_trace(options.trace_path, options.trace_format, scenario)
    source = Path(trace.source)
    shown = "the bundled Philly trace" if source == bundled_philly_path() else str(source)
    console.print(f"Trace: {shown}: {len(trace.jobs):,} jobs from {len(trace.tenants())} tenants.")
    for note in trace.notes:
        console.print(f"  {note.replace(str(source), source.name)}")
    mapped = []
    for objects in platforms:
        run_scenario = _default_mapping(objects, trace, scenario)
        _check_mapping(objects, trace, run_scenario, str(scenario_path) if scenario_path else None)
        mapped.append(run_scenario)

    results = []
    for spec, objects, run_scenario in zip(runs, platforms, mapped, strict=True):
        result, seconds = run_simulation(objects, trace, run_scenario, console=None if options.quiet else console,
                                         label=spec.label)
        summary = summarize(result)
        summary["platform"] = str(spec.platform)
        summary["label"] = spec.label
        summary["wallSeconds"] = seconds
        console.print(f"{spec.label}: simulated {result.end - result.start:,.0f} s of cluster time and "
                      f"{len(result.runs):,} jobs in {seconds:.1f} s ({len(result.runs) / max(seconds, 1e-9):,.0f} "
                      f"jobs/s, {result.cycles:,} scheduling cycles).")
        results.append((spec, result, summary))

    print_report(console, [(spec.label, summary) for spec, _, summary in results])
    for spec, _, summary in results:
        print_not_finished(console, spec.label, summary)
        if "devices" in summary:
            print_device_report(console, spec.label, summary["devices"])
    if options.out is not None:
        _write_results(options.out, results)
        console.print(f"Wrote per-workload records and summaries to {options.out}")
    return 0


def _print_load_warnings(console: Console, objects: ObjectSet) -> None:
    for warning in objects.warnings:
        console.print("warning:", style="yellow", end=" ")
        console.print(warning, markup=False, highlight=False)


def print_not_finished(console: Console, label: str, summary: dict[str, Any]) -> None:
    """Print why jobs did not finish, grouped by reason, with one example message each."""
    unfinished = summary["jobs"] - summary["finished"]
    if unfinished == 0:
        return
    groups: dict[str, list[dict[str, Any]]] = {}
    for job in summary["notFinished"]:
        groups.setdefault(f"{job['state']}: {job['reason'] or 'no attempt yet'}", []).append(job)
    table = _table(f"{label}: {unfinished:,} jobs did not finish (the first {len(summary['notFinished'])} "
                   "by reason, with one example)")
    table.add_column("state: reason")
    table.add_column("jobs", justify="right")
    table.add_column("example")
    for reason, jobs in sorted(groups.items(), key=lambda item: -len(item[1])):
        example = jobs[0]
        table.add_row(reason, f"{len(jobs):,}", f"{example['job']} ({example['tenant']}): {example['message']}")
    console.print(table)


def _write_results(out: Path, results: list[tuple[RunSpec, SimulationResult, dict[str, Any]]]) -> None:
    def fill(folder: Path) -> None:
        write_marker(folder, "simulate --out")
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
