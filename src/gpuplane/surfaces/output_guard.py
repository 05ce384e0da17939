"""Rules for output folders: gpuplane only ever replaces a folder it wrote itself.

A command that writes a folder (``render -o``, ``simulate --out``) checks the
target before it does any work, and marks what it writes with a file naming
the command, so that a later run may replace it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from gpuplane.model.errors import InputError, Location

__all__ = ["MARKER", "check_output_folder", "write_marker"]

MARKER = ".gpuplane-output"


def _error(target: Path, problem: str, hint: str) -> InputError:
    return InputError(problem=problem, location=Location(source=str(target)), hint=hint)


def check_output_folder(target: Path, *, inputs: Sequence[Path], command: str) -> None:
    """Raise an InputError unless ``target`` can be created, or replaced without losing anything.

    Refused: the current folder or one of its parents, a folder holding an
    input, an existing file, a folder whose parent does not exist, and a
    non-empty folder that gpuplane did not write.
    """
    resolved = target.resolve()
    here = Path.cwd().resolve()
    if resolved == here or resolved in here.parents:
        raise _error(target, f"{command} would replace the current folder or one that contains it.",
                     "Pass a new folder, for example --out results.")
    for path in inputs:
        source = path.resolve()
        if source == resolved or resolved in source.parents:
            raise _error(target, f"The output folder contains the input {path}; {command} replaces the whole "
                         "folder, so the input would be lost.", "Pass an output folder that holds no inputs.")
    if resolved.exists() and not resolved.is_dir():
        raise _error(target, "The output path is a file; gpuplane writes a folder there.",
                     "Pass a folder path that does not exist yet.")
    if not resolved.parent.is_dir():
        raise _error(target, f"The parent folder {resolved.parent} does not exist.",
                     "Create it first, or pass a path inside an existing folder.")
    if resolved.is_dir() and any(resolved.iterdir()) and not (resolved / MARKER).exists():
        raise _error(target, "The output folder is not empty and was not written by gpuplane; replacing it would "
                     "delete its files.", "Pass a new folder, or empty this one first.")


def write_marker(folder: Path, command: str) -> None:
    """Mark ``folder`` as written by gpuplane, so a later run of ``command`` may replace it."""
    (folder / MARKER).write_text(f"Written by gpuplane {command}; gpuplane may replace this folder.\n",
                                 encoding="utf-8")
