"""``gpuplane render``: write a Platform's objects as kustomize trees, validated, atomically.

Every object is validated before anything is written: Kubernetes kinds with
kubernetes-validate (strict) for the spec's ``kubernetesVersion``, Kueue and
Kyverno kinds and vcluster values against the vendored schemas. The tree is
written into a temporary folder beside the output folder and renamed into
place, so the output folder contains either the old tree or the whole new one.
Before anything is read, :func:`check_output_folder` makes sure that
replacing the output folder deletes nothing gpuplane did not write.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from gpuplane.model.errors import InputError, InputErrors, Location, SpecError
from gpuplane.model.platform.guardrails import PolicyEngine
from gpuplane.model.platform.layout import RenderedTree, render_platform
from gpuplane.model.platform.load import LoadedPlatform, load_platform
from gpuplane.model.validation import validate_object, validate_vcluster_values
from gpuplane.model.yamlio import dump_documents
from gpuplane.surfaces.output_guard import apply_default_mode, check_output_folder, write_marker

__all__ = ["RenderSummary", "render_spec", "validate_tree", "write_tree"]


@dataclass(frozen=True, slots=True)
class RenderSummary:
    """Counts of a render: files written, objects by kind, objects validated."""

    files: int
    objects: dict[str, int]
    validated: int


def validate_tree(tree: RenderedTree, kubernetes_version: str) -> int:
    """Validate every object and values file of ``tree``; return how many objects were checked.

    Raises InputErrors naming each invalid object, with the spec line that produced it.
    """
    errors: list[InputError] = []
    count = 0
    for file in tree.files:
        for manifest in file.manifests:
            try:
                problems = validate_object(manifest.data, kubernetes_version)
            except ValueError as error:
                raise SpecError(problem=f"{error}.", location=Location(field="spec.kubernetesVersion"),
                                value=kubernetes_version,
                                hint="Set spec.kubernetesVersion to a released minor version, e.g. 1.35.") from None
            count += 1
            for problem in problems:
                errors.append(SpecError(problem=f"The rendered {manifest.ref} in {file.path} is invalid: "
                                        f"{problem}.", location=manifest.locate(),
                                        hint="Change the spec value that produced this field."))
        if file.path.endswith("/values.yaml"):
            for values in file.plain:
                for problem in validate_vcluster_values(values):
                    errors.append(SpecError(problem=f"The rendered vcluster values {file.path} are invalid: "
                                            f"{problem}.", location=Location(source=file.path)))
    if errors:
        raise InputErrors(errors)
    return count


def write_tree(tree: RenderedTree, output: Path) -> None:
    """Write ``tree`` to ``output``, replacing what is there, all at once.

    The files go to a temporary sibling folder first. Only when every file is
    written is the old folder moved aside and the new one renamed into place.
    The caller checks ``output`` with :func:`check_output_folder` first.
    """
    output = output.resolve()
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.render-", dir=output.parent))
    try:
        for file in tree.files:
            target = staging / file.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(dump_documents(file.documents), encoding="utf-8")
        write_marker(staging, "render")
        apply_default_mode(staging)
        _swap_into_place(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _swap_into_place(staging: Path, output: Path) -> None:
    if not output.exists():
        os.rename(staging, output)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{output.name}.old-", dir=output.parent))
    retired.rmdir()
    os.rename(output, retired)
    try:
        os.rename(staging, output)
    except OSError:
        os.rename(retired, output)
        raise
    shutil.rmtree(retired, ignore_errors=True)


def render_spec(spec: Path, output: Path, *, engine: PolicyEngine = "vap") -> RenderSummary:
    """Render the Platform in ``spec`` into ``output``; validate everything before writing."""
    check_output_folder(output, inputs=[spec], command="render")
    loaded: LoadedPlatform = load_platform(spec)
    tree = render_platform(loaded.platform, document=loaded.document, engine=engine, extra=loaded.others)
    validated = validate_tree(tree, loaded.platform.spec.kubernetes_version)
    write_tree(tree, output)
    kinds: dict[str, int] = {}
    for manifest in tree.manifests():
        kinds[manifest.kind] = kinds.get(manifest.kind, 0) + 1
    return RenderSummary(files=len(tree.files), objects=dict(sorted(kinds.items())), validated=validated)
