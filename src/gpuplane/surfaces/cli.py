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
    stderr.print(str(error), markup=False, highlight=False)
