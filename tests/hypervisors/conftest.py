"""The libvirt tests need libvirt-python and (for the scale-set scenario) the hybrid SDK line at import time.

Only the hybrid venv has both, and it runs them; the current SDK's venv runs just the SDK-marked tests (-m sdk), which
these are not, so there they are left out of collection instead of failing to import.
"""

from __future__ import annotations

from tests.support.sdk import HYBRID_PROFILES, installed_lines

collect_ignore = (
    []
    if set(HYBRID_PROFILES) <= set(installed_lines())
    else [
        "test_libvirt_driver.py",
        "test_libvirt_scale_sets.py",
        "test_libvirt_guest_ops.py",
        "test_libvirt_hosts.py",
        "test_libvirt_upgrade.py",
        "test_several_machines.py",
    ]
)
