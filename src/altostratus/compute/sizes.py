"""VM sizes this cloud offers (the Azure Stack Hub subset), with the cores and memory quotas count."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VmSize:
    name: str
    cores: int
    memory_mb: int


SIZES = {
    s.name.lower(): s
    for s in (
        VmSize("Standard_A0", 1, 768),
        VmSize("Standard_A1", 1, 1792),
        VmSize("Standard_A2", 2, 3584),
        VmSize("Standard_A3", 4, 7168),
        VmSize("Standard_A1_v2", 1, 2048),
        VmSize("Standard_A2_v2", 2, 4096),
        VmSize("Standard_A4_v2", 4, 8192),
        VmSize("Standard_D1", 1, 3584),
        VmSize("Standard_D2", 2, 7168),
        VmSize("Standard_D1_v2", 1, 3584),
        VmSize("Standard_D2_v2", 2, 7168),
        VmSize("Standard_DS1_v2", 1, 3584),
        VmSize("Standard_DS2_v2", 2, 7168),
        VmSize("Standard_F1", 1, 2048),
        VmSize("Standard_F2", 2, 4096),
        VmSize("Standard_F2s_v2", 2, 4096),
    )
}


def find_size(name: str) -> VmSize | None:
    return SIZES.get(name.lower())
