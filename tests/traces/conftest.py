"""Shared fixtures for the trace adapter tests."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from gpuplane.model.trace import Trace
from gpuplane.model.traces import bundled_philly_path, load_philly

_OPENB_CANDIDATES = (
    Path(__file__).resolve().parents[2].parent / "shared/traces/alibaba-gpu-v2023-openb",
    Path("/work/shared/traces/alibaba-gpu-v2023-openb"),
)
ALIBABA_OPENB = Path(os.environ.get(
    "GPUPLANE_ALIBABA_OPENB",
    next((path for path in _OPENB_CANDIDATES if path.exists()), _OPENB_CANDIDATES[0]),
))
"""Folder of the Alibaba openb pod lists, which gpuplane may not ship.

Set GPUPLANE_ALIBABA_OPENB to use a copy elsewhere.
"""

WriteText = Callable[[str, str], Path]


@pytest.fixture
def write_text(tmp_path: Path) -> WriteText:
    """Return a function that writes a file under tmp_path and returns its path."""

    def write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture(scope="session")
def philly() -> Trace:
    """The bundled Philly trace, loaded once per test session."""
    return load_philly(bundled_philly_path())


@pytest.fixture(scope="session")
def alibaba_openb() -> Path:
    """The folder of Alibaba openb pod lists; skips the test when it is missing."""
    if not (ALIBABA_OPENB / "openb_pod_list_default.csv").is_file():
        pytest.skip(f"Alibaba GPU trace v2023 not found at {ALIBABA_OPENB}: it is not "
                    "redistributable, so these tests need a local copy")
    return ALIBABA_OPENB
