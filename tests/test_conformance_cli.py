"""conformance commands: unknown case ids and malformed case files are input errors (exit 2)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from gpuplane.surfaces.cli import main

CASES = Path(__file__).resolve().parent / "conformance"


def _main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["gpuplane", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    return int(exit_info.value.code or 0), captured.out, captured.err


@pytest.mark.parametrize(("runner", "file", "known"), [
    ("kueue", "kueue-cases.yaml", "C05"), ("dra", "dra-cases.yaml", "simple-count")])
def test_unknown_case_id_exits_two(runner: str, file: str, known: str, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _main(monkeypatch, capsys, "conformance", runner, str(CASES / file), "--case", "C99")
    assert code == 2
    assert out == ""
    assert "The file has no case with id 'C99'." in err
    assert known in err.split("allowed:")[1]


def test_known_and_unknown_ids_run_nothing(monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _main(monkeypatch, capsys, "conformance", "kueue", str(CASES / "kueue-cases.yaml"),
                           "--case", "C05", "--case", "C99")
    assert code == 2
    assert out == ""
    assert "'C99'" in err
    assert "'C05'" not in err


def test_unknown_id_suggests_close_ids(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _, _, err = _main(monkeypatch, capsys, "conformance", "dra", str(CASES / "dra-cases.yaml"),
                      "--case", "simple-cont")
    assert "fix: Close ids in the file: simple-count." in err


def test_known_case_id_runs(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _main(monkeypatch, capsys, "conformance", "kueue", str(CASES / "kueue-cases.yaml"),
                         "--case", "C05")
    assert code == 0
    assert out.splitlines()[-1] == "1 pass"


@pytest.mark.parametrize(("runner", "key"), [("kueue", "format"), ("dra", "schema")])
def test_missing_format_field_has_no_value(runner: str, key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "cases.yaml").write_text("cases: []\n")
    code, _, err = _main(monkeypatch, capsys, "conformance", runner, str(tmp_path / "cases.yaml"))
    assert code == 2
    assert f"The file has no `{key}` field" in err
    assert "value: None" not in err
