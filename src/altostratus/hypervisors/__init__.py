"""Hypervisor drivers: what runs scale-set instances (see docs/hypervisors.md).

``make_driver("sim", ...)`` builds the in-process simulator; real drivers (libvirt) plug in behind the same
``HypervisorDriver`` interface. Drivers never touch the database.
"""

from altostratus.hypervisors.base import (
    DriverError,
    HypervisorDriver,
    InstanceNotFound,
    InstanceSpec,
    InstanceState,
    PowerState,
    UnknownDriver,
    known_drivers,
    make_driver,
    register_driver,
)

__all__ = [
    "DriverError",
    "HypervisorDriver",
    "InstanceNotFound",
    "InstanceSpec",
    "InstanceState",
    "PowerState",
    "UnknownDriver",
    "known_drivers",
    "make_driver",
    "register_driver",
]
