"""The ``gpuplane`` command line.

Each command is a thin layer over the library: it reads files, calls the
model, decisions and simulator, and prints. A mistake in the user's input is
printed as one located message with no traceback, and the exit code is 2;
``check`` and ``conformance`` use 1 for findings and unexpected results.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from gpuplane.model.errors import InputError, InputErrors

__all__ = ["app", "main"]

app = typer.Typer(
    name="gpuplane",
    help="Platform-as-code and a faithful simulator for shared GPU platforms on Kubernetes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
conformance_app = typer.Typer(help="Run conformance case files re-expressed from upstream tests.",
                              no_args_is_help=True)
app.add_typer(conformance_app, name="conformance")

stderr = Console(stderr=True, highlight=False)


@conformance_app.command("kueue")
def conformance_kueue(
    file: Annotated[Path, typer.Argument(help="A kueue-cases/v1 file.")],
    case: Annotated[list[str] | None, typer.Option("--case", help="Run only this case id (repeatable).")] = None,
) -> None:
    """Run Kueue admission cases; print one line per case; exit 1 on any unexpected result."""
    from gpuplane.surfaces.conformance.common import exit_code, format_result, summary_line
    from gpuplane.surfaces.conformance.kueue_cases import run_kueue_cases

    results = run_kueue_cases(file, only=case)
    for result in results:
        typer.echo(format_result(result))
    typer.echo(summary_line(results))
    raise typer.Exit(exit_code(results))


@conformance_app.command("dra")
def conformance_dra(
    file: Annotated[Path, typer.Argument(help="A dra-cases/v1 file.")],
    case: Annotated[list[str] | None,
                    typer.Option("--case", help="Run only this case id (repeatable).")] = None,
) -> None:
    """Run DRA allocator cases; print one line per case; exit 1 on any unexpected result."""
    from gpuplane.surfaces.conformance.common import exit_code, format_result, summary_line
    from gpuplane.surfaces.conformance.dra_cases import run_dra_cases

    results = run_dra_cases(file, only=case)
    for result in results:
        typer.echo(format_result(result))
    typer.echo(summary_line(results))
    raise typer.Exit(exit_code(results))


@app.command("simulate")
def simulate(
    platform: Annotated[Path | None, typer.Argument(
        help="A Platform spec, a manifest file or a folder of manifests (kubectl get -o yaml works). "
             "Without it, the bundled Philly example runs.")] = None,
    trace: Annotated[Path | None, typer.Option(
        "--trace", help="Trace to replay: Philly CSV, native CSV or Parquet, or an Alibaba pod list. "
                        "Default: the scenario's trace.path, else the bundled Philly trace; with a cluster "
                        "dump that holds Workloads and no trace, the dumped Workloads run on their own.")] = None,
    trace_format: Annotated[str | None, typer.Option("--trace-format", help="auto (the default), philly, native "
                                                     "or alibaba-openb.")] = None,
    scenario: Annotated[Path | None, typer.Option("--scenario", help="A Scenario file: tenant mapping, Kueue "
                                                  "configuration, placement.")] = None,
    compare: Annotated[Path | None, typer.Option("--compare", help="A second platform to run on the same "
                                                 "trace; results are shown side by side.")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="New folder for per-workload records (Parquet) "
                                             "and summaries (JSON); a folder gpuplane wrote before is "
                                             "replaced.")] = None,
    size: Annotated[str | None, typer.Option("--size", help="Bundled example only: reduced (one third of each "
                                             "virtual cluster, the default) or recorded.")] = None,
    cluster: Annotated[str | None, typer.Option("--cluster", help="Cluster of a multi-cluster spec.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Stop at this simulated time after the first "
                                              "submission: seconds, or a duration such as 36h or 90m.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Replay a trace through Kueue's admission rules and report per tenant."""
    from gpuplane.surfaces.simulate import SimulateOptions, simulate_command

    options = SimulateOptions(platform=platform, trace_path=trace, trace_format=trace_format,
                              scenario_path=scenario, compare=compare, out=out, size=size, cluster=cluster,
                              until=until, quiet=quiet)
    raise typer.Exit(simulate_command(options, Console(highlight=False)))


PolicyEngineOption = Annotated[str, typer.Option(
    "--policy-engine", help="How guardrails are rendered: vap (ValidatingAdmissionPolicy and Binding, "
    "native since Kubernetes 1.30) or kyverno (Kyverno ValidatingPolicy, policies.kyverno.io/v1).")]


@app.command("render")
def render(
    spec: Annotated[Path, typer.Argument(help="A Platform spec (YAML).")],
    output: Annotated[Path, typer.Option("-o", "--output", help=(
        "Folder to write: a new or empty folder, or one an earlier render wrote, which is replaced whole. "
        "Its parent folder must exist."))],
    policy_engine: PolicyEngineOption = "vap",
) -> None:
    """Render a Platform into one validated kustomize tree per cluster."""
    from gpuplane.model.platform.guardrails import POLICY_ENGINES
    from gpuplane.surfaces.render import render_spec

    if policy_engine not in POLICY_ENGINES:
        raise typer.BadParameter(f"{policy_engine!r} is not a policy engine; use one of "
                                 f"{', '.join(POLICY_ENGINES)}", param_hint="--policy-engine")
    summary = render_spec(spec, output, engine=policy_engine)
    kinds = ", ".join(f"{count} {kind}" for kind, count in summary.objects.items())
    typer.echo(f"wrote {summary.files} files to {output}: {kinds}")
    typer.echo(f"validated {summary.validated} objects against Kubernetes and vendored CRD schemas")


@app.command("check", epilog="Exit codes: 0 no finding at or above --fail-on; 1 at least one; "
             "2 the input cannot be read or is invalid.")
def check(
    path: Annotated[Path, typer.Argument(help="A Platform spec, a manifest file, or a folder of manifests.")],
    output_format: Annotated[str, typer.Option("--format", help="Output: text, json or sarif (SARIF 2.1.0).")] = "text",
    fail_on: Annotated[str, typer.Option(
        "--fail-on", help="Lowest severity that makes the exit code 1: error, warning, info or never.")] = "error",
    kubernetes_version: Annotated[str | None, typer.Option(
        "--kubernetes-version", help="Kubernetes minor version whose schemas manifests are checked against; "
        "defaults to the spec's kubernetesVersion, or 1.35 for manifests.")] = None,
    scenario: Annotated[Path | None, typer.Option(
        "--scenario", help="A Scenario file whose kueue.resources.deviceClassMappings tell which DRA devices "
        "a quota resource counts (rule Q4). Default: the one Scenario in PATH, if there is one.")] = None,
) -> None:
    """Check a spec or manifests for the mistakes platform teams keep making."""
    from gpuplane.surfaces.check import FAIL_ON, FORMATS, check_path, exit_code, format_report

    if output_format not in FORMATS:
        raise typer.BadParameter(f"{output_format!r} is not a format; use one of {', '.join(FORMATS)}",
                                 param_hint="--format")
    if fail_on not in FAIL_ON:
        raise typer.BadParameter(f"{fail_on!r} is not a severity; use one of {', '.join(FAIL_ON)}",
                                 param_hint="--fail-on")
    report = check_path(path, kubernetes_version=kubernetes_version, scenario=scenario)
    typer.echo(format_report(report, output_format), nl=False)
    raise typer.Exit(exit_code(report, fail_on))


@app.command("diff")
def diff(
    old: Annotated[Path, typer.Argument(help="The Platform spec before the change.")],
    new: Annotated[Path, typer.Argument(help="The Platform spec after the change.")],
    output_format: Annotated[str, typer.Option("--format", help="Output: text, or markdown for a pull-request "
                                                "comment.")] = "text",
    policy_engine: PolicyEngineOption = "vap",
    exit_code: Annotated[bool, typer.Option("--exit-code", help="Exit 1 when any object changes.")] = False,
) -> None:
    """Show what a spec change does to the objects of each cluster."""
    from gpuplane.model.platform.guardrails import POLICY_ENGINES
    from gpuplane.surfaces.diff import DIFF_FORMATS, diff_specs, format_changes

    if output_format not in DIFF_FORMATS:
        raise typer.BadParameter(f"{output_format!r} is not a format; use one of {', '.join(DIFF_FORMATS)}",
                                 param_hint="--format")
    if policy_engine not in POLICY_ENGINES:
        raise typer.BadParameter(f"{policy_engine!r} is not a policy engine; use one of "
                                 f"{', '.join(POLICY_ENGINES)}", param_hint="--policy-engine")
    changes = diff_specs(old, new, engine=policy_engine)
    typer.echo(format_changes(changes, output_format), nl=False)
    raise typer.Exit(1 if exit_code and changes else 0)


def main() -> None:
    """Console entry point: run the app and turn input mistakes into clean messages."""
    try:
        app()
    except InputErrors as errors:
        for error in errors.errors:
            print_input_error(error)
        sys.exit(2)
    except InputError as error:
        print_input_error(error)
        sys.exit(2)


def print_input_error(error: InputError) -> None:
    stderr.print("error:", style="bold red", end=" ")
    stderr.print(str(error), markup=False, highlight=False, soft_wrap=True)
