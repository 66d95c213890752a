"""Hypervisor drivers: what runs scale-set instances (see docs/hypervisors.md).

``make_driver("sim", ...)`` builds the in-process simulator; real drivers (libvirt) plug in behind the same
``HypervisorDriver`` interface. Drivers never touch the database.
"""

from altostratus.hypervisors.base import (
    LEGACY_FORWARD_ADDRESS,
    CommandResult,
    DataDisk,
    DriverError,
    HostCapacity,
    HypervisorDriver,
    ImageBlob,
    InstanceNotFound,
    InstanceSpec,
    InstanceState,
    PortForward,
    PowerState,
    UnknownDriver,
    known_drivers,
    make_driver,
    normalize_forwards,
    register_driver,
)

__all__ = [
    "LEGACY_FORWARD_ADDRESS",
    "CommandResult",
    "DataDisk",
    "DriverError",
    "HostCapacity",
    "HypervisorDriver",
    "ImageBlob",
    "InstanceNotFound",
    "InstanceSpec",
    "InstanceState",
    "PortForward",
    "PowerState",
    "UnknownDriver",
    "known_drivers",
    "make_driver",
    "normalize_forwards",
    "register_driver",
]
