"""Read a platform from what a user points at: a Platform spec, a manifest file, or a folder.

Whatever the input, the result is the Kubernetes objects of one cluster, so
that a spec, its rendered folder and a ``kubectl get -o yaml`` dump of a real
cluster are simulated the same way.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gpuplane.model.errors import InputError, InputErrors, Location, SpecError
from gpuplane.model.manifests import (
    ObjectSet,
    errors_from_validation,
    objects_from_documents,
    yaml_files,
)
from gpuplane.model.platform.generate import generate_cluster_objects
from gpuplane.model.platform.references import LOADER_CHECKS_REFERENCES, ReferenceProblem, reference_problems
from gpuplane.model.platform.spec import API_VERSION, Platform
from gpuplane.model.yamlio import Document, iter_objects, load_documents

__all__ = ["GPUPLANE_KINDS", "LoadedPlatform", "check_gpuplane_kinds", "load_platform", "load_platform_objects",
           "read_platform"]

GPUPLANE_GROUP = API_VERSION.split("/", 1)[0]
GPUPLANE_KINDS = ("Platform", "Scenario")
"""Kinds of the gpuplane.dev group: a Platform spec, and the Scenario that simulate reads."""


class LoadedPlatform:
    """A Platform document with the parsed YAML it came from (for error locations)."""

    def __init__(self, platform: Platform, document: Document, others: Sequence[Document] = ()) -> None:
        self.platform = platform
        self.document = document
        self.others = list(others)
        """The other documents of the Platform's file: Kubernetes objects that go with the platform."""

    @property
    def source(self) -> str:
        return self.document.source


def _is_platform(data: object) -> bool:
    return isinstance(data, dict) and data.get("kind") == "Platform"


def read_platform(document: Document) -> LoadedPlatform:
    """Validate one parsed Platform document; errors carry file, line and field."""
    data = document.data
    if data.get("apiVersion") != API_VERSION:
        raise SpecError(problem=f"A Platform must have apiVersion {API_VERSION}.",
                        location=document.locate(("apiVersion",)), value=data.get("apiVersion"),
                        allowed=API_VERSION)
    try:
        platform = Platform.model_validate(data, context={LOADER_CHECKS_REFERENCES: True})
    except ValidationError as error:
        raise InputErrors(errors_from_validation(error, document, (), kind="Platform", error_type=SpecError,
                                                 model=Platform)) from None
    problems = reference_problems(platform.spec)
    if problems:
        raise InputErrors([_located(problem, document) for problem in problems])
    return LoadedPlatform(platform, document)


def _located(problem: ReferenceProblem, document: Document) -> SpecError:
    fields: dict[str, Any] = {"problem": f"Invalid Platform: {problem.message}.",
                              "location": document.locate(("spec", *problem.path)),
                              "allowed": problem.allowed, "hint": problem.hint}
    if problem.has_value:
        fields["value"] = problem.value
    return SpecError(**fields)


def check_gpuplane_kinds(documents: Sequence[Document]) -> None:
    """Raise InputErrors for each document of the gpuplane.dev group whose kind gpuplane does not know.

    Other groups' unknown kinds may be custom resources, but a misspelt
    ``kind: Platfrom`` would otherwise be skipped and the input read as empty.
    """
    errors: list[InputError] = []
    for document, path, data in iter_objects(documents):
        if not isinstance(data, dict) or not str(data.get("apiVersion", "")).startswith(GPUPLANE_GROUP + "/"):
            continue
        kind = data.get("kind")
        if kind in GPUPLANE_KINDS:
            continue
        guess = difflib.get_close_matches(str(kind), GPUPLANE_KINDS, n=1)
        errors.append(SpecError(problem=f"Kind {kind!r} of {data['apiVersion']} is not known.",
                                location=document.locate((*path, "kind")), value=kind,
                                allowed=", ".join(GPUPLANE_KINDS),
                                hint=f"Did you mean {guess[0]}?" if guess else "Use one of the allowed kinds."))
    if errors:
        raise InputErrors(errors)


def load_platform(path: Path) -> LoadedPlatform:
    """Read a file that holds one Platform document."""
    documents = load_documents(path, error=SpecError)
    check_gpuplane_kinds(documents)
    platforms = [d for d in documents if _is_platform(d.data)]
    if len(platforms) != 1:
        raise SpecError(problem=f"Expected exactly one Platform document, found {len(platforms)}.",
                        location=Location(source=str(path)),
                        hint="Put one `kind: Platform` document in the file.")
    loaded = read_platform(platforms[0])
    loaded.others = [d for d in documents if not _is_platform(d.data)]
    return loaded


def load_platform_objects(path: Path, *, cluster: str | None = None) -> ObjectSet:
    """Return the objects of one cluster from a Platform spec, a manifest file or a folder.

    A file whose documents include a Platform is a spec (other documents in it
    are added as manifests); anything else is read as Kubernetes manifests.
    """
    if not path.exists():
        raise SpecError(problem="The path does not exist.", location=Location(source=str(path)),
                        hint="Pass a Platform spec, a manifest file, or a folder of manifests.")
    documents: list[Document] = []
    for file in yaml_files(path):
        documents.extend(load_documents(file))
    check_gpuplane_kinds(documents)
    platforms = [d for d in documents if _is_platform(d.data)]
    others = [d for d in documents if not _is_platform(d.data)]
    result = ObjectSet()
    if len(platforms) > 1:
        raise SpecError(problem=f"Found {len(platforms)} Platform documents; gpuplane reads one at a time.",
                        location=Location(source=platforms[1].source, line=None),
                        hint="Pass one Platform file.")
    if platforms:
        loaded = read_platform(platforms[0])
        result.extend(generate_cluster_objects(loaded.platform, cluster, document=loaded.document))
    if others:
        result.extend(objects_from_documents(others))
    return result
