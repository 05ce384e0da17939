"""Heterogeneous fleets from Alibaba's published machine inventories.

Two files are read, from a path the caller gives (gpuplane does not ship
them: the 2026 file is for research or study use only):

- ``pai2020_machine_spec.csv`` (PAI GPU trace v2020, no header row):
  ``machine, gpu_type, cap_cpu, cap_mem (GB), cap_gpu``;
- ``spot2026_node_info_df.csv`` (spot GPU trace v2026, with a header row):
  ``gpu_model, gpu_capacity_num, cpu_num, node_name``; it has no memory
  column, so memory is estimated from the vCPU count (``memory_per_cpu``).

Identical machines become one :class:`NodePool` each, in order of first
appearance. GPU model names are kept as the traces spell them, and those the
device catalog describes (V100, T4, A100-SXM4-80GB, H800, ...) also get DRA
devices from the inventory module.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from gpuplane.model.errors import Location, TraceError
from gpuplane.model.inventory.catalog import find_model
from gpuplane.model.platform.spec import GpuSpec, NodePool
from gpuplane.model.quantity import Quantity, QuantityError, parse_quantity

__all__ = ["MachineShape", "load_pai2020", "load_spot2026", "node_pools"]

PAI2020_COLUMNS = ("machine", "gpu_type", "cap_cpu", "cap_mem", "cap_gpu")
SPOT2026_COLUMNS = ("gpu_model", "gpu_capacity_num", "cpu_num", "node_name")
_NO_GPU = {"CPU", ""}


@dataclass(frozen=True)
class MachineShape:
    """Shape of a machine: GPU model and count, CPUs and memory; one shape, one node pool."""

    gpu_model: str
    gpus: int
    cpus: int
    memory_gib: int


def _integer(text: str, column: str, location: Location) -> int:
    try:
        value = int(text)
    except ValueError:
        raise TraceError(problem=f"Column {column} must be a whole number.", location=location,
                         value=text,
                         hint="Check that the file is the unmodified inventory.") from None
    if value < 0:
        raise TraceError(problem=f"Column {column} must not be negative.", location=location,
                         value=text)
    return value


def _rows(path: Path, columns: tuple[str, ...], *, header: bool) -> Iterator[tuple[int, list[str]]]:
    try:
        handle = path.open(newline="", encoding="utf-8")
    except FileNotFoundError:
        raise TraceError(problem="The inventory file does not exist.",
                         location=Location(source=str(path)),
                         hint="Pass the path of the Alibaba inventory CSV.") from None
    with handle:
        for number, row in enumerate(csv.reader(handle), start=1):
            if header and number == 1:
                if tuple(row) != columns:
                    raise TraceError(problem="The header row does not match the expected columns.",
                                     location=Location(source=str(path), line=1), value=row,
                                     allowed=", ".join(columns))
                continue
            if len(row) != len(columns):
                raise TraceError(problem=f"Expected {len(columns)} columns, found {len(row)}.",
                                 location=Location(source=str(path), line=number), value=row,
                                 allowed=", ".join(columns))
            yield number, row


def load_pai2020(path: Path) -> list[MachineShape]:
    """Read ``pai2020_machine_spec.csv``: one shape per machine, in file order."""
    shapes = []
    for number, (_, gpu_type, cpus, memory, gpus) in _rows(path, PAI2020_COLUMNS, header=False):
        where = Location(source=str(path), line=number)
        gpu_count = _integer(gpus, "cap_gpu", where)
        model = "" if gpu_type in _NO_GPU else gpu_type
        shapes.append(MachineShape(model, gpu_count if model else 0,
                                   _integer(cpus, "cap_cpu", where),
                                   _integer(memory, "cap_mem", where)))
    return shapes


def load_spot2026(path: Path, *, memory_per_cpu_gib: int = 8) -> list[MachineShape]:
    """Read ``spot2026_node_info_df.csv``; memory is estimated at ``memory_per_cpu_gib`` a vCPU."""
    shapes = []
    for number, (model, gpus, cpus, _) in _rows(path, SPOT2026_COLUMNS, header=True):
        where = Location(source=str(path), line=number)
        cpu_count = _integer(cpus, "cpu_num", where)
        shapes.append(MachineShape(model, _integer(gpus, "gpu_capacity_num", where), cpu_count,
                                   cpu_count * memory_per_cpu_gib))
    return shapes


def _pool_name(prefix: str, shape: MachineShape) -> str:
    model = re.sub(r"[^a-z0-9]+", "-", shape.gpu_model.lower()).strip("-") or "cpu"
    name = f"{prefix}-{model}-{shape.gpus}g-{shape.cpus}c-{shape.memory_gib}gi"
    return name[:63].rstrip("-")


def _quantity(text: str) -> Quantity:
    try:
        return parse_quantity(text)
    except QuantityError as error:  # pragma: no cover - the texts are built above
        raise ValueError(str(error)) from error


def node_pools(shapes: list[MachineShape], *, prefix: str) -> list[NodePool]:
    """Group identical machines into node pools named ``<prefix>-<model>-<gpus>g-<cpus>c-<mem>gi``.

    A GPU model missing from the device catalog keeps its name. Such a pool
    gets no DRA ``devices``, but its GPUs still count as its extended resource.
    """
    counts: dict[MachineShape, int] = {}
    for shape in shapes:
        counts[shape] = counts.get(shape, 0) + 1
    pools = []
    for shape, count in counts.items():
        gpu = None
        if shape.gpus:
            model = find_model(shape.gpu_model)
            resource = "amd.com/gpu" if model is not None and model.driver == "gpu.amd.com" \
                else "nvidia.com/gpu"
            gpu = GpuSpec(count=shape.gpus, model=model.key if model else shape.gpu_model,
                          resource=resource,
                          memory=_quantity(f"{model.memory_mib}Mi") if model else None)
        pools.append(NodePool(name=_pool_name(prefix, shape), count=count,
                              cpu=_quantity(str(shape.cpus)),
                              memory=_quantity(f"{shape.memory_gib}Gi"), gpu=gpu))
    return pools
