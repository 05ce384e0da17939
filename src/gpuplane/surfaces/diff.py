"""``gpuplane diff``: what changing a spec does to the objects of each cluster, for people or a PR comment."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from gpuplane.decisions.diff import ObjectChange, diff_manifests
from gpuplane.model.platform.guardrails import PolicyEngine
from gpuplane.model.platform.layout import render_platform
from gpuplane.model.platform.load import load_platform
from gpuplane.model.platform.rendered import Manifest

__all__ = ["DIFF_FORMATS", "diff_specs", "format_changes"]

DiffFormat = Literal["text", "markdown"]
DIFF_FORMATS: tuple[DiffFormat, ...] = ("text", "markdown")
_SIGN = {"added": "+", "removed": "-", "changed": "~"}


def _manifests(spec: Path, engine: PolicyEngine) -> list[Manifest]:
    loaded = load_platform(spec)
    tree = render_platform(loaded.platform, document=loaded.document, engine=engine, extra=loaded.others)
    result = tree.manifests()
    for file in tree.files:
        if file.path.endswith("/values.yaml"):
            # Helm values are no object, but a change to them changes the tenant's virtual cluster.
            cluster, _, tenant = file.path.split("/")[:3]
            data = {"kind": "VClusterValues", "metadata": {"name": tenant}, "values": file.plain[0]}
            result.append(Manifest(data=data, cluster=cluster, generated=True))
    return result


def diff_specs(old: Path, new: Path, *, engine: PolicyEngine = "vap") -> list[ObjectChange]:
    """Render both specs in memory and return how the objects differ."""
    return diff_manifests(_manifests(old, engine), _manifests(new, engine))


def _value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=False)


def _counts(changes: Iterable[ObjectChange]) -> str:
    counts = {"added": 0, "changed": 0, "removed": 0}
    for change in changes:
        counts[change.change] += 1
    return f"{counts['added']} added, {counts['changed']} changed, {counts['removed']} removed"


def _format_text(changes: list[ObjectChange]) -> str:
    if not changes:
        return "no changes to any object\n"
    lines: list[str] = []
    cluster = None
    for change in changes:
        if change.cluster != cluster:
            cluster = change.cluster
            lines.append(f"cluster {cluster}:")
        lines.append(f"  {_SIGN[change.change]} {change.ref} ({change.change})")
        for item in change.fields:
            if item.change == "added":
                lines.append(f"      + {item.label}: {_value(item.new)}")
            elif item.change == "removed":
                lines.append(f"      - {item.label}: {_value(item.old)}")
            else:
                lines.append(f"      ~ {item.label}: {_value(item.old)} -> {_value(item.new)}")
    lines.append(_counts(changes))
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = _value(value).replace("|", "\\|").replace("\n", " ")
    return f"`{text}`"


def _summary(change: ObjectChange) -> str:
    count = len(change.fields)
    return f"<summary><code>{change.ref}</code>: {count} field{'' if count == 1 else 's'}</summary>"


def _format_markdown(changes: list[ObjectChange]) -> str:
    if not changes:
        return "### gpuplane diff\n\nNo object changes.\n"
    lines = ["### gpuplane diff", "", f"**{_counts(changes)}**", ""]
    clusters = sorted({change.cluster for change in changes})
    for cluster in clusters:
        lines += [f"#### Cluster `{cluster}`", "", "| change | object |", "|---|---|"]
        selected = [change for change in changes if change.cluster == cluster]
        lines += [f"| {change.change} | `{change.ref}` |" for change in selected]
        lines.append("")
        for change in selected:
            if not change.fields:
                continue
            lines += ["<details>", _summary(change), "",
                      "| field | old | new |", "|---|---|---|"]
            lines += [f"| `{item.label}` | {_cell(item.old)} | {_cell(item.new)} |" for item in change.fields]
            lines += ["", "</details>", ""]
    return "\n".join(lines)


def format_changes(changes: list[ObjectChange], output_format: DiffFormat) -> str:
    """Format changes as terminal text or as Markdown for a pull-request comment."""
    if output_format == "markdown":
        return _format_markdown(changes)
    return _format_text(changes)
