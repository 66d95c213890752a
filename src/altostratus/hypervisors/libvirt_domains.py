"""Our record in a domain's metadata, and domain operations that tolerate the races a driver meets.

The record (``libvirt_xml.InstanceRecord``) is everything the driver remembers about an instance, so reading
and writing it must cope with a guest that powers off between two calls, and destroy/undefine with a domain
that another thread or driver object already stopped or removed.
"""

from __future__ import annotations

from typing import Any

import libvirt

from altostratus.hypervisors.libvirt_xml import NAMESPACE, PREFIX, InstanceRecord, record_from_xml, record_to_xml

__all__ = ["destroy", "read_record", "remove", "write_record"]


def read_record(dom: Any) -> InstanceRecord | None:
    """Our record of a domain, or None when the domain is not one of our instances."""
    try:
        text = dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, NAMESPACE, 0)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN_METADATA:
            return None
        raise
    try:
        return record_from_xml(text)
    except ValueError:
        return None  # e.g. a KVM test domain, or a future format


def write_record(dom: Any, rec: InstanceRecord) -> None:
    """Store ``rec`` in the persistent definition, and in the running domain too while it runs."""
    xml = record_to_xml(rec, with_namespace=False)
    live = dom.isActive()
    flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG | (libvirt.VIR_DOMAIN_AFFECT_LIVE if live else 0)
    try:
        dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, xml, PREFIX, NAMESPACE, flags)
    except libvirt.libvirtError:
        if not live or dom.isActive():
            raise
        # The guest powered off between the two calls: only the persistent definition is left.
        dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, xml, PREFIX, NAMESPACE, libvirt.VIR_DOMAIN_AFFECT_CONFIG)


def destroy(dom: Any) -> None:
    """Pull the plug; a domain that is already off (or gone) is fine."""
    try:
        dom.destroy()
    except libvirt.libvirtError as exc:
        if exc.get_error_code() not in (libvirt.VIR_ERR_OPERATION_INVALID, libvirt.VIR_ERR_NO_DOMAIN):
            raise


def remove(dom: Any) -> None:
    """Power off and undefine, with whatever libvirt keeps beside the definition; a domain already gone is
    fine (a delete retried after a crash, or racing another driver object)."""
    try:
        if dom.isActive():
            destroy(dom)
        dom.undefineFlags(_undefine_flags())
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
            raise


def _undefine_flags() -> int:
    # Flags this libvirt-python knows (older bindings lack some): undefining must not fail on leftovers.
    flags = 0
    for name in (
        "VIR_DOMAIN_UNDEFINE_MANAGED_SAVE",
        "VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA",
        "VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA",
        "VIR_DOMAIN_UNDEFINE_NVRAM",
    ):
        flags |= int(getattr(libvirt, name, 0))
    return flags
