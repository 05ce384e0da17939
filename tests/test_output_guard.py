"""Output folders: render replaces only folders that lose nothing of the user's."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from builders import base_platform, tenant, write_spec
from gpuplane.model.errors import InputError
from gpuplane.surfaces.output_guard import MARKER, check_output_folder
from gpuplane.surfaces.render import render_spec


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    return write_spec(tmp_path, base_platform())


@pytest.fixture
def umask_027() -> Iterator[None]:
    previous = os.umask(0o027)
    yield
    os.umask(previous)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from gpuplane.surfaces.cli import main; main()", *args],
                          capture_output=True, text=True, check=False, cwd=cwd)


def test_current_folder_is_rejected(spec: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(spec.parent)
    with pytest.raises(InputError, match="current folder"):
        render_spec(Path("platform.yaml"), Path("."))
    assert spec.exists()


def test_ancestor_of_current_folder_is_rejected(spec: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inner = spec.parent / "inner"
    inner.mkdir()
    monkeypatch.chdir(inner)
    with pytest.raises(InputError, match="current folder or contains it"):
        render_spec(spec, spec.parent)
    assert spec.exists()


def test_folder_holding_the_input_is_rejected(tmp_path: Path) -> None:
    out = tmp_path / "out"
    spec = write_spec(tmp_path, base_platform())
    render_spec(spec, out)
    inside = write_spec(out, base_platform(), "mine.yaml")
    with pytest.raises(InputError, match="contains the input"):
        render_spec(inside, out)
    assert inside.exists()


def test_folder_without_marker_is_rejected(spec: Path) -> None:
    out = spec.parent / "scratch"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    with pytest.raises(InputError, match=f"not empty and has no {MARKER} file, so gpuplane did not write it"):
        render_spec(spec, out)
    assert (out / "notes.txt").read_text() == "mine\n"


def test_file_is_rejected(spec: Path) -> None:
    target = spec.parent / "afile"
    target.write_text("hi\n")
    with pytest.raises(InputError, match="is a file, but `gpuplane render` writes a folder"):
        render_spec(spec, target)
    assert target.read_text() == "hi\n"


def test_path_below_file_is_rejected(spec: Path) -> None:
    (spec.parent / "afile").write_text("hi\n")
    with pytest.raises(InputError, match="afile is a file, so no output folder can be created"):
        render_spec(spec, spec.parent / "afile" / "out")


def test_missing_parent_is_not_created(spec: Path) -> None:
    with pytest.raises(InputError, match=r"does not exist\. gpuplane creates the output folder but not its parents"):
        render_spec(spec, spec.parent / "nonexistent-parent" / "out")
    assert not (spec.parent / "nonexistent-parent").exists()


def test_empty_folder_is_filled(spec: Path) -> None:
    out = spec.parent / "out"
    out.mkdir()
    render_spec(spec, out)
    assert (out / "lab" / "kustomization.yaml").is_file()


def test_marker_names_the_command(spec: Path) -> None:
    render_spec(spec, spec.parent / "out")
    assert "gpuplane render" in (spec.parent / "out" / MARKER).read_text()


def test_output_is_checked_before_the_spec(tmp_path: Path) -> None:
    platform = base_platform()
    tenant(platform)["isolation"] = "hard"
    spec = write_spec(tmp_path, platform)
    (tmp_path / "afile").write_text("hi\n")
    with pytest.raises(InputError, match="is a file"):
        render_spec(spec, tmp_path / "afile")


@pytest.mark.usefixtures("umask_027")
def test_output_folder_mode_follows_umask(spec: Path) -> None:
    out = spec.parent / "out"
    render_spec(spec, out)
    assert stat.S_IMODE(out.stat().st_mode) == 0o750
    assert stat.S_IMODE((out / "lab").stat().st_mode) == 0o750


def test_guard_accepts_new_folder_in_existing_parent(tmp_path: Path) -> None:
    check_output_folder(tmp_path / "new", inputs=[tmp_path / "platform.yaml"], command="simulate")


def test_cli_rejection_exits_two_without_traceback(spec: Path) -> None:
    result = _cli("render", "platform.yaml", "-o", ".", cwd=spec.parent)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "error: .: The output folder is the current folder or contains it" in result.stderr
    assert "fix: Pass a folder that does not exist yet, such as -o out." in result.stderr
    assert sorted(p.name for p in spec.parent.iterdir()) == ["platform.yaml"]
