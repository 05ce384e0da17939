"""Accelerator models the inventory can publish as DRA devices, with their MIG profiles.

Attribute names follow NVIDIA's ``gpu.nvidia.com`` kubelet plugin
(``productName``, ``architecture``, ``cudaComputeCapability``, memory in
bytes); AMD boards use the driver name ``gpu.amd.com`` with the same
attribute names. Memory sizes (MiB, as NVML reports them) and SM counts are
representative figures, not captured from real hardware. The MIG engine
counts of the 80 GB-class boards reuse the A100 40GB layout.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

__all__ = ["CATALOG", "GpuModel", "MigProfile", "find_model", "model_names"]

NVIDIA_DRIVER: Final = "gpu.nvidia.com"
AMD_DRIVER: Final = "gpu.amd.com"


@dataclass(frozen=True)
class MigProfile:
    """One MIG profile of a GPU model: its size and where instances may start.

    ``placements`` are the memory-slice indexes an instance may start at; an
    instance occupies ``memory_slices`` consecutive slices from there.
    """

    name: str
    profile_id: int
    multiprocessors: int
    memory_mib: int
    memory_slices: int
    placements: tuple[int, ...]
    copy_engines: int
    decoders: int
    encoders: int = 0
    jpeg_engines: int = 0
    ofa_engines: int = 0

    @property
    def compact_name(self) -> str:
        """The profile as NVIDIA's device names spell it: ``1g.5gb`` becomes ``1g5gb``."""
        return self.name.replace(".", "")


@dataclass(frozen=True)
class GpuModel:
    """One accelerator board as its driver describes it."""

    key: str
    driver: str
    product_name: str
    architecture: str
    compute_capability: str
    memory_mib: int
    multiprocessors: int = 0
    memory_slices: int = 0
    mig_profiles: tuple[MigProfile, ...] = ()
    aliases: tuple[str, ...] = field(default=())

    def mig_profile(self, name: str) -> MigProfile | None:
        for profile in self.mig_profiles:
            if profile.name == name:
                return profile
        return None


def _a100_40() -> tuple[MigProfile, ...]:
    return (
        MigProfile("1g.5gb", 19, 14, 4864, 1, (0, 1, 2, 3, 4, 5, 6), 1, 0),
        MigProfile("2g.10gb", 14, 28, 9856, 2, (0, 2, 4), 2, 1),
        MigProfile("3g.20gb", 9, 42, 19968, 4, (0, 4), 3, 2),
        MigProfile("4g.20gb", 5, 56, 19968, 4, (0,), 4, 2),
        MigProfile("7g.40gb", 0, 98, 40192, 8, (0,), 7, 5, 0, 1, 1),
    )


def _eighty_gb(sms: tuple[int, int, int, int, int], memory: tuple[int, int, int, int, int],
               names: tuple[str, str, str, str, str]) -> tuple[MigProfile, ...]:
    """Profiles of the 80 GB-class boards, which share A100 80GB's slice layout."""
    return (
        MigProfile(names[0], 19, sms[0], memory[0], 1, (0, 1, 2, 3, 4, 5, 6), 1, 0),
        MigProfile(names[1], 14, sms[1], memory[1], 2, (0, 2, 4), 2, 1),
        MigProfile(names[2], 9, sms[2], memory[2], 4, (0, 4), 3, 2),
        MigProfile(names[3], 5, sms[3], memory[3], 4, (0,), 4, 2),
        MigProfile(names[4], 0, sms[4], memory[4], 8, (0,), 7, 5, 0, 1, 1),
    )


CATALOG: Final[tuple[GpuModel, ...]] = (
    GpuModel("A100-SXM4-40GB", NVIDIA_DRIVER, "NVIDIA A100-SXM4-40GB", "Ampere", "8.0.0", 40960,
             108, 8, _a100_40(), aliases=("A100-40GB", "A100")),
    GpuModel("A100-SXM4-80GB", NVIDIA_DRIVER, "NVIDIA A100-SXM4-80GB", "Ampere", "8.0.0", 81920,
             108, 8,
             _eighty_gb((14, 28, 42, 56, 98), (9728, 19968, 40192, 40192, 80896),
                        ("1g.10gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb")),
             aliases=("A100-80GB",)),
    GpuModel("A800-SXM4-80GB", NVIDIA_DRIVER, "NVIDIA A800-SXM4-80GB", "Ampere", "8.0.0", 81920,
             108, aliases=("A800",)),
    GpuModel("H100-SXM5-80GB", NVIDIA_DRIVER, "NVIDIA H100 80GB HBM3", "Hopper", "9.0.0", 81559,
             132, 8,
             _eighty_gb((16, 32, 60, 64, 132), (9984, 20096, 40320, 40320, 80768),
                        ("1g.10gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb")),
             aliases=("H100", "H100-80GB")),
    GpuModel("H200-SXM5-141GB", NVIDIA_DRIVER, "NVIDIA H200", "Hopper", "9.0.0", 143771, 132, 8,
             _eighty_gb((16, 32, 60, 64, 132), (18048, 35840, 71552, 71552, 143104),
                        ("1g.18gb", "2g.35gb", "3g.71gb", "4g.71gb", "7g.141gb")),
             aliases=("H200", "H200-141GB")),
    GpuModel("H800", NVIDIA_DRIVER, "NVIDIA H800", "Hopper", "9.0.0", 81559, 132),
    GpuModel("V100-SXM2-16GB", NVIDIA_DRIVER, "Tesla V100-SXM2-16GB", "Volta", "7.0.0", 16160, 80,
             aliases=("V100",)),
    GpuModel("V100-SXM2-32GB", NVIDIA_DRIVER, "Tesla V100-SXM2-32GB", "Volta", "7.0.0", 32510, 80,
             aliases=("V100M32",)),
    GpuModel("P100", NVIDIA_DRIVER, "Tesla P100-PCIE-16GB", "Pascal", "6.0.0", 16280, 56),
    GpuModel("T4", NVIDIA_DRIVER, "Tesla T4", "Turing", "7.5.0", 15360, 40),
    GpuModel("A10", NVIDIA_DRIVER, "NVIDIA A10", "Ampere", "8.6.0", 23028, 72),
    GpuModel("MI300X", AMD_DRIVER, "AMD Instinct MI300X", "gfx942", "9.4.2", 196608, 304,
             aliases=("AMD-MI300X",)),
)


def _normal(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


_BY_NAME: Final = {_normal(alias): model for model in CATALOG
                   for alias in (model.key, *model.aliases)}


def find_model(name: str) -> GpuModel | None:
    """Find a model by key or alias, ignoring case and punctuation (``h100`` finds H100)."""
    return _BY_NAME.get(_normal(name))


def model_names() -> list[str]:
    return [model.key for model in CATALOG]
