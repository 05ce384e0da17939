"""Checks that keep an output folder option (``-o``) from deleting files gpuplane did not write.

Commands that write a result folder replace it whole, so a folder may be
replaced only when that loses nothing of the user's:

- the folder does not exist yet, and its parent folder does (parents are
  not created, so a typo in the path is reported, not built);
- or it is empty;
- or gpuplane wrote it: it holds the marker file :data:`MARKER` at its top.

The current folder, the folders that contain it, and any folder that
contains one of the command's inputs are never replaced.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from gpuplane.model.errors import InputError, Location

__all__ = ["MARKER", "apply_default_mode", "check_output_folder", "write_marker"]

MARKER = ".gpuplane-output"
_NEW_FOLDER_HINT = "Pass a folder that does not exist yet, such as -o out."


def check_output_folder(target: Path, *, inputs: Sequence[Path], command: str) -> None:
    """Raise InputError unless ``target`` may be replaced whole by the output of ``gpuplane command``."""
    resolved = target.resolve()
    where = Location(source=str(target))
    if resolved == Path.cwd().resolve() or resolved in Path.cwd().resolve().parents:
        raise InputError(problem=f"The output folder is the current folder or contains it. `gpuplane {command}` "
                         "replaces its output folder whole, so the files in it would be deleted.",
                         location=where, hint=_NEW_FOLDER_HINT)
    for path in inputs:
        source = path.resolve()
        if source == resolved or resolved in source.parents:
            raise InputError(problem=f"The output folder contains the input {path}. `gpuplane {command}` "
                             "replaces its output folder whole, so the input would be deleted.",
                             location=where, hint=_NEW_FOLDER_HINT)
    if resolved.exists() and not resolved.is_dir():
        raise InputError(problem=f"The output path is a file, but `gpuplane {command}` writes a folder.",
                         location=where, hint="Pass a folder path, or remove the file first.")
    _check_parent(target, resolved.parent)
    if resolved.is_dir() and not (resolved / MARKER).is_file() and any(resolved.iterdir()):
        raise InputError(problem=f"The output folder is not empty and has no {MARKER} file, so gpuplane did not "
                         f"write it. `gpuplane {command}` replaces its output folder whole, so those files would "
                         "be deleted.", location=where,
                         hint="Pass a new or empty folder, or remove this folder yourself if its files can go.")


def _check_parent(target: Path, parent: Path) -> None:
    where = Location(source=str(target))
    if not parent.exists():
        raise InputError(problem=f"The folder {parent} does not exist. gpuplane creates the output folder "
                         "but not its parents.", location=where,
                         hint=f"Create it first (mkdir -p {parent}), or pass a path in an existing folder.")
    if not parent.is_dir():
        raise InputError(problem=f"{parent} is a file, so no output folder can be created inside it.",
                         location=where, hint="Pass a path in an existing folder.")


def write_marker(folder: Path, command: str) -> None:
    """Write the marker that lets a later run of gpuplane replace ``folder``."""
    (folder / MARKER).write_text(
        f"Written by `gpuplane {command}`. The next run that writes to this folder replaces it whole,\n"
        "so keep no other files in it.\n", encoding="utf-8")


def apply_default_mode(folder: Path) -> None:
    """Give ``folder`` the mode ``mkdir`` would give it under the current umask (tempfile.mkdtemp uses 0700)."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
