"""The ``devices`` section of a node pool: what DRA devices each node publishes.

Example (every field optional)::

    gpu: {count: 8, model: H100-SXM5-80GB}
    devices:
      driverVersion: 550.127.8     # GPU driver version (semver)
      cudaDriverVersion: 12.4.0
      pcieRoots: 8                 # PCIe root complexes the GPUs and NICs are spread over
      nics: 8                      # RDMA NICs per node
      nicSpeed: 400G               # link speed per NIC, a quantity in bit/s
      nicModel: ConnectX-7
      mig: {profile: 1g.10gb, count: 7}

``mig`` publishes every GPU as a partitionable device: a counter set per GPU,
the full GPU and ``count`` instances of ``profile`` (all placements when
``count`` is left out), so that the allocator keeps full GPUs and partitions
from overlapping. That layout needs the DRAPartitionableDevices feature.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from gpuplane.model.errors import InputErrors, Location, SpecError
from gpuplane.model.inventory.catalog import GpuModel, find_model, model_names
from gpuplane.model.manifests import errors_from_validation
from gpuplane.model.objects.base import QuantityValue
from gpuplane.model.platform.spec import NodePool
from gpuplane.model.yamlio import Document, FieldPath, format_path

__all__ = ["MigSpec", "NodeDevices", "node_devices"]


class _Strict(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid",
                              arbitrary_types_allowed=True)


class MigSpec(_Strict):
    profile: str = Field(description="MIG profile, e.g. 1g.10gb.")
    count: int | None = Field(default=None, ge=1, description="Instances per GPU; all placements "
                              "when left out.")


def _semver(value: str) -> str:
    parts = value.split(".")
    if len(parts) != 3 or not all(part.isdigit() for part in parts):
        raise ValueError(f"{value!r} is not a version of the form major.minor.patch")
    return ".".join(str(int(part)) for part in parts)


class NodeDevices(_Strict):
    """DRA devices of one node of a pool, beyond the GPUs that ``gpu`` describes."""

    driver_version: str = "550.127.8"
    cuda_driver_version: str = "12.4.0"
    pcie_roots: int | None = Field(default=None, ge=1, description="Defaults to one per GPU.")
    nics: int = Field(default=0, ge=0, le=64)
    nic_speed: QuantityValue | None = None
    nic_model: str = "ConnectX-7"
    mig: MigSpec | None = None

    @field_validator("driver_version", "cuda_driver_version")
    @classmethod
    def _versions(cls, value: str) -> str:
        return _semver(value)


def node_devices(pool: NodePool, *, document: Document | None = None, path: FieldPath = (),
                 strict: bool = True) -> tuple[GpuModel | None, NodeDevices]:
    """Validate ``pool.devices`` against ``pool.gpu``; return the GPU model and the devices.

    ``document`` and ``path`` (the pool's path in it) place errors at their line.
    A GPU model missing from the catalog is an error, unless ``strict`` is off
    and the pool has no ``devices`` section: then its GPUs publish no devices
    (for fleets read from traces, whose model names are free text).
    Raises :class:`SpecError` or :class:`InputErrors`.
    """
    try:
        devices = NodeDevices.model_validate(pool.devices)
    except ValidationError as error:
        raise InputErrors(errors_from_validation(error, document, (*path, "devices"),
                                                 kind="node pool devices",
                                                 error_type=SpecError)) from None
    model = _gpu_model(pool, document, path, strict=strict or bool(pool.devices))
    _check_mig(pool, model, devices, document, path)
    return model, devices


def _where(document: Document | None, path: FieldPath) -> Location:
    return document.locate(path) if document is not None else Location(field=format_path(path))


def _gpu_model(pool: NodePool, document: Document | None, path: FieldPath, *,
               strict: bool) -> GpuModel | None:
    if pool.gpu is None or pool.gpu.count == 0:
        return None
    model = find_model(pool.gpu.model)
    if model is None and strict:
        raise SpecError(problem=f"Node pool {pool.name!r} names GPU model {pool.gpu.model!r}, "
                        "which gpuplane cannot describe as DRA devices.",
                        location=_where(document, (*path, "gpu", "model")), value=pool.gpu.model,
                        allowed=", ".join(model_names()),
                        hint="Use one of the allowed models, or leave the pool without devices.")
    return model


def _check_mig(pool: NodePool, model: GpuModel | None, devices: NodeDevices,
               document: Document | None, path: FieldPath) -> None:
    if devices.mig is None:
        return
    where = _where(document, (*path, "devices", "mig", "profile"))
    if model is None or not model.mig_profiles:
        raise SpecError(problem=f"Node pool {pool.name!r} asks for MIG, but its GPUs "
                        f"({model.key if model else 'none'}) have no MIG profiles in gpuplane.",
                        location=where, hint="Remove devices.mig or use an A100, H100 or H200.")
    profile = model.mig_profile(devices.mig.profile)
    if profile is None:
        raise SpecError(problem=f"{model.key} has no MIG profile {devices.mig.profile!r}.",
                        location=where, value=devices.mig.profile,
                        allowed=", ".join(p.name for p in model.mig_profiles))
    if devices.mig.count is not None and devices.mig.count > len(profile.placements):
        raise SpecError(problem=f"{model.key} fits at most {len(profile.placements)} instances of "
                        f"{profile.name}, but devices.mig.count is {devices.mig.count}.",
                        location=_where(document, (*path, "devices", "mig", "count")),
                        value=devices.mig.count, allowed=f"1 to {len(profile.placements)}")
