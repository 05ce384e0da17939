"""Writing result folders atomically: everything goes to a temporary folder that is renamed into place."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["write_json", "write_tree"]


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False, default=_default) + "\n", encoding="utf-8")


def _default(value: Any) -> Any:
    if isinstance(value, float) and value != value:  # NaN
        return None
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def write_tree(target: Path, fill: Callable[[Path], None]) -> None:
    """Create ``target`` as a folder filled by ``fill``; replace an existing one only when ``fill`` succeeded."""
    target = target.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        fill(staging)
        if target.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
            os.replace(target, retired / "old")
            os.replace(staging, target)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
