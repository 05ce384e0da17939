"""``gpuplane check``: run the lint rules on a Platform spec or a folder of manifests.

A spec is rendered in memory first (with the Nodes its pools describe), so
the rules see exactly the objects ``render`` would write, and each finding
points at the spec line that produced the object. A folder or manifest file
is read as it is, with YAML 1.1 rules, and findings point into those files.

Exit codes: 0 when no finding reaches ``--fail-on`` (default ``error``), 1
when one does, 2 when the input cannot be read (the same as every other
command).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gpuplane.decisions.checks import RULES, CheckInput, Finding, Severity, is_checked, run_checks
from gpuplane.model.errors import InputError, InputErrors, Location
from gpuplane.model.manifests import yaml_files
from gpuplane.model.platform.layout import render_platform
from gpuplane.model.platform.load import GPUPLANE_KINDS, check_gpuplane_kinds, read_platform
from gpuplane.model.platform.rendered import Manifest
from gpuplane.model.scenario import load_scenario
from gpuplane.model.yamlio import Document, iter_objects, load_documents

__all__ = ["FAIL_ON", "FORMATS", "CheckReport", "check_path", "exit_code", "format_report"]

OutputFormat = Literal["text", "json", "sarif"]
FORMATS: tuple[OutputFormat, ...] = ("text", "json", "sarif")
FAIL_ON = ("error", "warning", "info", "never")
_SARIF_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


@dataclass(frozen=True, slots=True)
class CheckReport:
    """Findings of one check run, and what was checked."""

    source: str
    objects: int
    findings: list[Finding]


def _finding_from_error(error: InputError) -> Finding:
    return Finding(rule="S1", severity=Severity.ERROR, message=error.problem, fix=error.hint or "",
                   location=error.location)


def _spec_input(document: Document, others: list[Document]) -> tuple[CheckInput, list[Finding], list[Finding]]:
    """Render a spec in memory; a spec that does not render whole still gets its rules run on the rest.

    ``others`` are the other documents of the spec's file, checked as they are.
    Returns the input, the tenants whose ClusterQueue is invalid, and the other
    render errors, each as S1 findings.
    """
    from gpuplane.surfaces.render import validate_tree

    loaded = read_platform(document)
    platform = loaded.platform
    check = CheckInput(manifests=[], platform=platform, document=document,
                       kubernetes_version=platform.spec.kubernetes_version)
    invalid_queues: list[InputError] = []
    problems: list[InputError] = []
    try:
        tree = render_platform(platform, document=document, problems=invalid_queues)
        check.manifests = tree.manifests() + _file_manifests(others)
        validate_tree(tree, platform.spec.kubernetes_version)
    except InputErrors as errors:
        problems.extend(errors.errors)
    except InputError as error:
        problems.append(error)
    return check, [_finding_from_error(e) for e in invalid_queues], [_finding_from_error(e) for e in problems]


def _is_gpuplane_kind(data: object, kinds: tuple[str, ...] = GPUPLANE_KINDS) -> bool:
    return (isinstance(data, dict) and data.get("kind") in kinds
            and str(data.get("apiVersion", "")).startswith("gpuplane.dev/"))


def _is_scenario(data: object) -> bool:
    return _is_gpuplane_kind(data, ("Scenario",))


def _file_manifests(documents: list[Document]) -> list[Manifest]:
    """Return every object of ``documents`` except gpuplane's own kinds, which are read elsewhere."""
    manifests = []
    for document, object_path, data in iter_objects(documents):
        if isinstance(data, dict) and not _is_gpuplane_kind(data):
            manifests.append(Manifest(data=data, document=document, path=object_path))
    return manifests


def _read_documents(path: Path) -> list[Document]:
    if not path.exists():
        raise InputError(problem="The path does not exist.", location=Location(source=str(path)),
                         hint="Pass a Platform spec, a manifest file or a folder of manifests.")
    documents: list[Document] = []
    for file in yaml_files(path):
        documents.extend(load_documents(file))
    check_gpuplane_kinds(documents)
    return documents


def _reject_empty(path: Path, documents: list[Document]) -> None:
    """Raise InputError when no document contains a Kubernetes object or a Platform, so nothing would be checked."""
    scenarios = 0
    for _, _, data in iter_objects(documents):
        if _is_scenario(data):
            scenarios += 1
        elif isinstance(data, dict) and data.get("kind"):
            return
    if scenarios:
        found = "only a Scenario, which simulate reads and check uses for Q4 alone"
    elif documents:
        found = f"{len(documents)} YAML document{'' if len(documents) == 1 else 's'} without a `kind`"
    else:
        found = "no YAML documents"
    raise InputError(problem=f"Nothing gpuplane can check was found: the input has {found}.",
                     location=Location(source=str(path)),
                     allowed="a Platform spec (apiVersion gpuplane.dev/v1alpha1, kind Platform), or Kubernetes "
                     "objects with apiVersion and kind, one per YAML document or in a kind: List",
                     hint="Pass the spec or manifest files themselves, or a folder that contains them.")


def _unexplained(queue_findings: list[Finding], findings: list[Finding]) -> list[Finding]:
    """Drop invalid-ClusterQueue errors when a rule reports an error in the same tenant (K1 for limits)."""
    explained = [f.location for f in findings if f.severity is Severity.ERROR and f.location.field]
    kept = []
    for finding in queue_findings:
        field = finding.location.field
        if field and any(location.source == finding.location.source and _within(location.field or "", field)
                         for location in explained):
            continue
        kept.append(finding)
    return kept


def _within(field: str, parent: str) -> bool:
    return field == parent or field.startswith((parent + ".", parent + "["))


def _device_class_mappings(documents: list[Document], scenario: Path | None) -> dict[str, tuple[str, ...]]:
    """Return Kueue's deviceClassMappings from ``scenario``, or from the one Scenario among ``documents``."""
    if scenario is None:
        sources = {d.source for d in documents if _is_scenario(d.data)}
        if len(sources) != 1:
            return {}
        scenario = Path(sources.pop())
    mappings = load_scenario(scenario).spec.kueue.resources.device_class_mappings
    return {mapping.name: tuple(mapping.device_class_names) for mapping in mappings}


def check_path(path: Path, *, kubernetes_version: str | None = None, scenario: Path | None = None) -> CheckReport:
    """Read ``path`` (a spec, a manifest file or a folder) and run every rule on it.

    ``scenario`` is a Scenario file whose Kueue deviceClassMappings tell which
    devices a quota resource counts. Without it, a single Scenario document
    in ``path`` is used.
    """
    documents = _read_documents(path)
    _reject_empty(path, documents)
    mappings = _device_class_mappings(documents, scenario)
    platforms = [d for d in documents if isinstance(d.data, dict) and d.data.get("kind") == "Platform"]
    if platforms:
        others = [d for d in documents if d.source == platforms[0].source and d is not platforms[0]]
        check, queue_findings, render_findings = _spec_input(platforms[0], others)
    else:
        check, queue_findings, render_findings = CheckInput(manifests=_file_manifests(documents)), [], []
    if kubernetes_version is not None:
        check.kubernetes_version = kubernetes_version
    check.device_class_mappings = mappings
    findings = run_checks(check)
    render_findings = _unexplained(queue_findings, findings) + render_findings
    if render_findings and not any(f.severity is Severity.ERROR for f in findings):
        # The spec is broken in a way no rule explains: report it as the input error it is.
        raise InputErrors([InputError(problem=f.message, location=f.location, hint=f.fix or None)
                           for f in render_findings])
    objects = sum(1 for manifest in check.manifests if is_checked(manifest, check.kubernetes_version))
    return CheckReport(source=str(path), objects=objects, findings=render_findings + findings)


def exit_code(report: CheckReport, fail_on: str) -> int:
    """Return 1 if any finding is at least as severe as ``fail_on``, else 0."""
    if fail_on == "never":
        return 0
    threshold = Severity(fail_on).rank
    return 1 if any(f.severity.rank >= threshold for f in report.findings) else 0


def _counts(report: CheckReport) -> dict[str, int]:
    counts = {severity.value: 0 for severity in Severity}
    for finding in report.findings:
        counts[finding.severity.value] += 1
    return counts


def _format_text(report: CheckReport) -> str:
    lines = []
    for finding in report.findings:
        where = str(finding.location) or report.source
        lines.append(f"{where}: {finding.severity.value} {finding.rule}: {finding.message}")
        if finding.fix:
            lines.append(f"    fix: {finding.fix}")
    counts = _counts(report)
    lines.append(f"{report.source}: {_plural(report.objects, 'object')} checked, {_plural(counts['error'], 'error')}, "
                 f"{_plural(counts['warning'], 'warning')}, {counts['info']} info")
    return "\n".join(lines) + "\n"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _finding_json(finding: Finding) -> dict[str, Any]:
    location = finding.location
    return {"rule": finding.rule, "severity": finding.severity.value, "message": finding.message,
            "fix": finding.fix, "file": location.source, "line": location.line, "column": location.column,
            "field": location.field, "object": finding.object, "cluster": finding.cluster}


def _format_json(report: CheckReport) -> str:
    body = {"source": report.source, "objects": report.objects, "summary": _counts(report),
            "findings": [_finding_json(f) for f in report.findings]}
    return json.dumps(body, indent=2) + "\n"


def _sarif_result(finding: Finding, rule_index: dict[str, int]) -> dict[str, Any]:
    location = finding.location
    text = finding.message + (f" Fix: {finding.fix}" if finding.fix else "")
    result: dict[str, Any] = {"ruleId": finding.rule, "level": _SARIF_LEVEL[finding.severity],
                              "message": {"text": text}}
    if finding.rule in rule_index:
        result["ruleIndex"] = rule_index[finding.rule]
    physical: dict[str, Any] = {}
    if location.source:
        physical["artifactLocation"] = {"uri": Path(location.source).as_posix()}
    if physical and location.line is not None:
        physical["region"] = {"startLine": location.line, "startColumn": location.column or 1}
    entry: dict[str, Any] = {}
    if physical:
        entry["physicalLocation"] = physical
    if location.field or finding.object:
        entry["logicalLocations"] = [{"fullyQualifiedName": location.field or finding.object}]
    if entry:
        result["locations"] = [entry]
    return result


def _format_sarif(report: CheckReport) -> str:
    rules = [{"id": rule.id, "name": rule.id, "shortDescription": {"text": rule.title},
              "defaultConfiguration": {"level": _SARIF_LEVEL[rule.severity]}} for rule in RULES]
    rule_index = {rule.id: index for index, rule in enumerate(RULES)}
    sarif = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "gpuplane", "rules": rules}},
            "results": [_sarif_result(f, rule_index) for f in report.findings],
        }],
    }
    return json.dumps(sarif, indent=2) + "\n"


def format_report(report: CheckReport, output_format: OutputFormat) -> str:
    """Format a report as text for people, JSON for scripts, or SARIF 2.1.0 for code scanning."""
    if output_format == "json":
        return _format_json(report)
    if output_format == "sarif":
        return _format_sarif(report)
    return _format_text(report)
