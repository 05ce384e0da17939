"""Load Kubernetes objects from YAML manifests, folders and ``kubectl get -o yaml`` dumps.

A file may hold several documents or a ``kind: List``. Each object is matched
to its typed model by API group and kind, converted to the version gpuplane
models (Kueue ``v1beta1`` becomes ``v1beta2`` as Kueue's conversion webhook
does) and validated. Every invalid object is reported with file, line, field
path and value; kinds and fields gpuplane does not model are reported once as
warnings and skipped.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from gpuplane.model.errors import InputError, InputErrors, Location, ManifestError
from gpuplane.model.field_errors import errors_from_validation
from gpuplane.model.objects.base import TypedObject
from gpuplane.model.objects.core import Namespace, Node, PriorityClass
from gpuplane.model.objects.kueue import (
    AdmissionCheck,
    ClusterQueue,
    Cohort,
    LocalQueue,
    ResourceFlavor,
    Workload,
    WorkloadPriorityClass,
)
from gpuplane.model.objects.resource import (
    DeviceClass,
    ResourceClaim,
    ResourceClaimTemplate,
    ResourceSlice,
)
from gpuplane.model.yamlio import Document, FieldPath, format_path, iter_objects, load_documents

__all__ = [
    "HELM_VALUES_FILES",
    "KindInfo",
    "ObjectSet",
    "errors_from_validation",
    "load_objects",
    "objects_from_documents",
    "register_kind",
    "typed_object",
    "yaml_files",
]

Converter = Callable[[str, dict[str, Any]], dict[str, Any]]
T = TypeVar("T", bound=TypedObject)


@dataclass(frozen=True, slots=True)
class KindInfo:
    """How to read one kind: its model, accepted versions and version conversion."""

    group: str
    kind: str
    model: type[TypedObject]
    versions: tuple[str, ...]
    namespaced: bool
    convert: Converter | None = None


_KINDS: dict[tuple[str, str], KindInfo] = {}


def register_kind(info: KindInfo) -> None:
    """Make ``load_objects`` read ``info.kind`` of ``info.group``."""
    _KINDS[(info.group, info.kind)] = info


def _split_api_version(api_version: str) -> tuple[str, str]:
    if "/" in api_version:
        group, version = api_version.split("/", 1)
        return group, version
    return "", api_version


@dataclass
class ObjectSet:
    """Typed objects by kind, in the order they were read, plus load warnings."""

    objects: list[TypedObject] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    locations: dict[int, Location] = field(default_factory=dict)

    def add(self, obj: TypedObject, location: Location | None = None) -> None:
        self.objects.append(obj)
        if location is not None:
            self.locations[id(obj)] = location

    def extend(self, other: ObjectSet) -> None:
        self.objects.extend(other.objects)
        self.warnings.extend(other.warnings)
        self.locations.update(other.locations)

    def of(self, model: type[T]) -> list[T]:
        """Return every object of one kind."""
        return [obj for obj in self.objects if isinstance(obj, model)]

    def location(self, obj: TypedObject) -> Location:
        return self.locations.get(id(obj), Location(field=f"{obj.kind} {obj.key}"))

    def kinds(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for obj in self.objects:
            counts[obj.kind] += 1
        return dict(counts)


# Helm chart values hold no Kubernetes objects; a rendered tree keeps a hard
# tenant's vcluster values beside its manifests.
HELM_VALUES_FILES = frozenset({"values.yaml", "values.yml"})


def yaml_files(path: Path) -> list[Path]:
    """Return the YAML and JSON files under a folder (sorted, Helm values skipped), or the file itself."""
    if path.is_dir():
        found = [p for p in sorted(path.rglob("*")) if p.suffix in {".yaml", ".yml", ".json"}]
        return [p for p in found if p.is_file() and p.name not in HELM_VALUES_FILES]
    return [path]


def load_objects(paths: Iterable[Path]) -> ObjectSet:
    """Read every object of every file (folders are walked); raise all errors at once."""
    documents: list[Document] = []
    for path in paths:
        if not path.exists():
            raise ManifestError(problem="The path does not exist.", location=Location(source=str(path)),
                                hint="Check the path; pass a manifest file or a folder of manifests.")
        for file in yaml_files(path):
            documents.extend(load_documents(file))
    return objects_from_documents(documents)


def objects_from_documents(documents: Sequence[Document]) -> ObjectSet:
    """Validate the Kubernetes objects in parsed documents."""
    result = ObjectSet()
    errors: list[InputError] = []
    unknown_kinds: dict[str, int] = defaultdict(int)
    unknown_fields: set[tuple[str, str]] = set()
    for document, path, data in iter_objects(documents):
        try:
            obj = _read_object(document, path, data, unknown_kinds)
        except InputError as error:
            errors.append(error)
            continue
        except InputErrors as many:
            errors.extend(many.errors)
            continue
        if obj is None:
            continue
        location = document.locate(path)
        result.add(obj, location)
        for extra in _unknown_fields(obj):
            marker = (obj.kind, format_path(extra))
            if marker not in unknown_fields:
                unknown_fields.add(marker)
                where = document.locate(path + extra)
                result.warnings.append(
                    f"{where.source}:{where.line}: {obj.kind} field {format_path(extra)} is not "
                    "modelled by gpuplane and is ignored")
    if unknown_kinds:
        skipped = ", ".join(f"{count} {kind}" for kind, count in sorted(unknown_kinds.items()))
        result.warnings.append(f"skipped objects of kinds gpuplane does not read: {skipped}")
    if errors:
        raise InputErrors(errors)
    return result


def _read_object(document: Document, path: FieldPath, data: Any,
                 unknown_kinds: dict[str, int]) -> TypedObject | None:
    location = document.locate(path)
    if not isinstance(data, dict):
        raise ManifestError(problem="Expected a Kubernetes object (a mapping), found "
                            f"{type(data).__name__}.", location=location)
    api_version, kind = data.get("apiVersion"), data.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        raise ManifestError(problem="The object has no apiVersion or kind.", location=location,
                            hint="Every Kubernetes object needs apiVersion and kind fields.")
    group, version = _split_api_version(api_version)
    info = _KINDS.get((group, kind))
    if info is None:
        unknown_kinds[f"{kind} ({api_version})"] += 1
        return None
    if version not in info.versions:
        raise ManifestError(
            problem=f"{kind} version {version!r} of group {group or 'core'!r} is not supported.",
            location=document.locate((*path, "apiVersion")),
            value=api_version,
            allowed=", ".join(f"{group}/{v}" if group else v for v in info.versions),
        )
    if info.convert is not None:
        data = info.convert(version, data)
    try:
        return info.model.model_validate(data)
    except ValidationError as error:
        raise InputErrors(errors_from_validation(error, document, path, kind=kind, model=info.model)) from None


def typed_object(data: dict[str, Any]) -> TypedObject | None:
    """Return ``data`` as its typed model, converted to the version gpuplane models.

    Returns None for a kind or version gpuplane does not read, and for an
    object that is invalid, which the caller reports (or not) on its own.
    """
    api_version, kind = data.get("apiVersion"), data.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return None
    group, version = _split_api_version(api_version)
    info = _KINDS.get((group, kind))
    if info is None or version not in info.versions:
        return None
    if info.convert is not None:
        data = info.convert(version, data)
    try:
        return info.model.model_validate(data)
    except ValidationError:
        return None


def _unknown_fields(obj: BaseModel) -> Iterator[FieldPath]:
    """Yield paths of fields kept in ``model_extra`` (metadata and status are skipped)."""
    for name in type(obj).model_fields:
        if name in {"metadata", "status"}:
            continue
        yield from _walk_extras(getattr(obj, name), (_alias(type(obj), name),))
    for key in obj.model_extra or {}:
        if key not in {"status"}:
            yield (key,)


def _alias(model: type[BaseModel], name: str) -> str:
    info = model.model_fields[name]
    return info.alias or name


def _walk_extras(value: Any, path: FieldPath) -> Iterator[FieldPath]:
    if isinstance(value, BaseModel):
        for key in value.model_extra or {}:
            yield (*path, key)
        for name in type(value).model_fields:
            yield from _walk_extras(getattr(value, name), (*path, _alias(type(value), name)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk_extras(item, (*path, index))
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, BaseModel):
                yield from _walk_extras(item, (*path, key))


# --- Kueue version conversion -------------------------------------------------------------------


def _convert_cluster_queue(version: str, data: dict[str, Any]) -> dict[str, Any]:
    if version != "v1beta1":
        return data
    data = dict(data)
    spec = dict(data.get("spec") or {})
    if "cohort" in spec:
        spec["cohortName"] = spec.pop("cohort")
    checks = spec.pop("admissionChecks", None)
    if checks:
        spec["admissionChecksStrategy"] = {"admissionChecks": [{"name": name} for name in checks]}
    fungibility = spec.get("flavorFungibility")
    if isinstance(fungibility, dict):
        fungibility = dict(fungibility)
        if fungibility.get("whenCanBorrow") == "Borrow":
            fungibility["whenCanBorrow"] = "MayStopSearch"
        if fungibility.get("whenCanPreempt") == "Preempt":
            fungibility["whenCanPreempt"] = "MayStopSearch"
        spec["flavorFungibility"] = fungibility
    data["spec"] = spec
    return data


def _convert_cohort(version: str, data: dict[str, Any]) -> dict[str, Any]:
    if version != "v1alpha1":
        return data
    data = dict(data)
    spec = dict(data.get("spec") or {})
    if "parent" in spec:
        spec["parentName"] = spec.pop("parent")
    data["spec"] = spec
    return data


def _convert_workload(version: str, data: dict[str, Any]) -> dict[str, Any]:
    if version != "v1beta1":
        return data
    data = dict(data)
    spec = dict(data.get("spec") or {})
    name = spec.pop("priorityClassName", None)
    source = spec.pop("priorityClassSource", None)
    if name and source == "kueue.x-k8s.io/workloadpriorityclass":
        spec["priorityClassRef"] = {"group": "kueue.x-k8s.io", "kind": "WorkloadPriorityClass", "name": name}
    elif name and source == "scheduling.k8s.io/priorityclass":
        spec["priorityClassRef"] = {"group": "scheduling.k8s.io", "kind": "PriorityClass", "name": name}
    data["spec"] = spec
    return data


# --- resource.k8s.io version conversion ----------------------------------------------------------
# v1beta2 has the v1 shapes. v1beta1 wraps a device's fields in ``basic`` and puts an exact
# request's fields on the request itself; both are rewritten into the v1 shape here.

_REQUEST_FIELDS = ("deviceClassName", "selectors", "allocationMode", "count", "adminAccess",
                   "tolerations", "capacity")


def _convert_slice(version: str, data: dict[str, Any]) -> dict[str, Any]:
    if version != "v1beta1":
        return data
    spec = dict(data.get("spec") or {})
    devices = spec.get("devices")
    if isinstance(devices, list):
        spec["devices"] = [_unwrap_basic(device) for device in devices]
    return {**data, "spec": spec}


def _unwrap_basic(device: Any) -> Any:
    if not isinstance(device, dict) or not isinstance(device.get("basic"), dict):
        return device
    rest = {key: value for key, value in device.items() if key != "basic"}
    return {**rest, **device["basic"]}


def _convert_claim_spec(spec: Any) -> Any:
    if not isinstance(spec, dict) or not isinstance(spec.get("devices"), dict):
        return spec
    devices = dict(spec["devices"])
    requests = devices.get("requests")
    if isinstance(requests, list):
        devices["requests"] = [_wrap_exactly(request) for request in requests]
    return {**spec, "devices": devices}


def _wrap_exactly(request: Any) -> Any:
    if not isinstance(request, dict) or "exactly" in request or "firstAvailable" in request:
        return request
    exactly = {key: request[key] for key in _REQUEST_FIELDS if key in request}
    rest = {key: value for key, value in request.items() if key not in _REQUEST_FIELDS}
    return {**rest, "exactly": exactly}


def _convert_claim(version: str, data: dict[str, Any]) -> dict[str, Any]:
    if version != "v1beta1":
        return data
    return {**data, "spec": _convert_claim_spec(data.get("spec"))}


def _convert_claim_template(version: str, data: dict[str, Any]) -> dict[str, Any]:
    if version != "v1beta1" or not isinstance(data.get("spec"), dict):
        return data
    spec = dict(data["spec"])
    spec["spec"] = _convert_claim_spec(spec.get("spec"))
    return {**data, "spec": spec}


_KUEUE_VERSIONS = ("v1beta2", "v1beta1")
_RESOURCE_VERSIONS = ("v1", "v1beta2", "v1beta1")
for _info in (
    KindInfo("kueue.x-k8s.io", "ResourceFlavor", ResourceFlavor, _KUEUE_VERSIONS, False),
    KindInfo("kueue.x-k8s.io", "ClusterQueue", ClusterQueue, _KUEUE_VERSIONS, False, _convert_cluster_queue),
    KindInfo("kueue.x-k8s.io", "Cohort", Cohort, (*_KUEUE_VERSIONS, "v1alpha1"), False, _convert_cohort),
    KindInfo("kueue.x-k8s.io", "LocalQueue", LocalQueue, _KUEUE_VERSIONS, True),
    KindInfo("kueue.x-k8s.io", "WorkloadPriorityClass", WorkloadPriorityClass, _KUEUE_VERSIONS, False),
    KindInfo("kueue.x-k8s.io", "AdmissionCheck", AdmissionCheck, _KUEUE_VERSIONS, False),
    KindInfo("kueue.x-k8s.io", "Workload", Workload, _KUEUE_VERSIONS, True, _convert_workload),
    KindInfo("", "Node", Node, ("v1",), False),
    KindInfo("", "Namespace", Namespace, ("v1",), False),
    KindInfo("scheduling.k8s.io", "PriorityClass", PriorityClass, ("v1",), False),
    KindInfo("resource.k8s.io", "ResourceSlice", ResourceSlice, _RESOURCE_VERSIONS, False,
             _convert_slice),
    KindInfo("resource.k8s.io", "DeviceClass", DeviceClass, _RESOURCE_VERSIONS, False),
    KindInfo("resource.k8s.io", "ResourceClaim", ResourceClaim, _RESOURCE_VERSIONS, True,
             _convert_claim),
    KindInfo("resource.k8s.io", "ResourceClaimTemplate", ResourceClaimTemplate, _RESOURCE_VERSIONS,
             True, _convert_claim_template),
):
    register_kind(_info)
