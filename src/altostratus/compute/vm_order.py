"""``$orderby`` on a scale set's VM list: the instances sorted by the API, so a client shows one page of a sorted
set without fetching and decoding all of them.

Why: Azure's VMSS VM list takes ``$filter``, ``$select`` and ``$expand`` and pages with ``nextLink``, always in
instance-id order. The portal's instances table (100 rows a page of up to 1000, sortable by any column) fetched
all 1000 with their instance views (~2 MB of JSON) for each page and sorted them itself: most of the page's time
(issue 13, ``bench/portal.py``). Sorted here, over the stored rows, only the page's 100 are rendered and sent.
An Azure client never sends ``$orderby`` to this API; to one that does, the order is the only difference.

One key, OData style (``$orderby=<key> [asc|desc]``, keys case-insensitive), ties broken by instance id so pages
are stable; ``$skiptoken`` then pages the sorted list as it pages the unsorted one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, overload

from sqlalchemy import select
from sqlalchemy.orm import Session

from altostratus.arm.errors import ArmError
from altostratus.compute.models import ScaleSet, ScaleSetVm
from altostratus.compute.render import vm_provisioning


def version_key(version: str | None) -> tuple[int, ...]:
    """``1.10.0`` after ``1.9.0``; a version that is not dotted numbers sorts first."""
    try:
        return tuple(int(x) for x in (version or "").split("."))
    except ValueError:
        return ()


# The VM's JSON path (as the list renders it) -> the value it shows, from the stored row.
ORDER_KEYS: dict[str, Callable[[ScaleSet, ScaleSetVm], Any]] = {
    "instanceId": lambda ss, r: r.instance_id,
    "name": lambda ss, r: f"{ss.name}_{r.instance_id}",
    "properties/storageProfile/imageReference/exactVersion": lambda ss, r: version_key(r.image_version),
    "properties/latestModelApplied": lambda ss, r: r.model_revision == ss.model_revision,
    "properties/provisioningState": lambda ss, r: vm_provisioning(r),
    # The code of the PowerState status of properties/instanceView/statuses (an instance being deleted has none).
    "properties/instanceView/powerState": lambda ss, r: "" if r.state == "Deleting" else r.power_state,
}
_BY_LOWER = {k.lower(): k for k in ORDER_KEYS}


def sort_rows(ss: ScaleSet, rows: list[Any], orderby: str | None) -> list[Any]:
    """``rows`` (instances, or rows with the columns ``SORT_COLUMNS`` names) in the order ``$orderby`` asks (as they
    are when it is absent); a 400 naming ``$orderby`` for anything else than one known key and an optional
    direction."""
    if orderby is None:
        return rows
    parts = orderby.split()
    key = _BY_LOWER.get(parts[0].lower()) if parts else None
    direction = parts[1].lower() if len(parts) == 2 else "asc"
    if key is None or len(parts) > 2 or direction not in ("asc", "desc"):
        raise ArmError(
            400,
            "InvalidParameter",
            f"The $orderby '{orderby}' is not supported: give one of {', '.join(ORDER_KEYS)}, optionally followed "
            "by asc or desc.",
            "$orderby",
        )
    value = ORDER_KEYS[key]
    return sorted(rows, key=lambda r: (value(ss, r), r.instance_id), reverse=direction == "desc")


# What the order keys read: sorting 1000 instances reads these columns, not 1000 whole rows (their JSON included).
SORT_COLUMNS = (
    ScaleSetVm.id,
    ScaleSetVm.instance_id,
    ScaleSetVm.image_version,
    ScaleSetVm.model_revision,
    ScaleSetVm.state,
    ScaleSetVm.power_state,
)


def ordered_rows(s: Session, ss: ScaleSet, orderby: str | None) -> RowsInOrder:
    """The set's instances in ``$orderby``'s order, each whole row loaded only when a page renders it."""
    keys = s.execute(select(*SORT_COLUMNS).where(ScaleSetVm.scale_set_id == ss.id).order_by(ScaleSetVm.instance_id))
    return RowsInOrder(s, [r.id for r in sort_rows(ss, list(keys), orderby)])


class RowsInOrder(Sequence[ScaleSetVm]):
    """Instances by row id in a fixed order; a slice loads its rows in one query. Why: a page of 100 of a
    1000-instance set built every row's object (~30 ms of CPU) to render a tenth of them (issue 13's bench)."""

    def __init__(self, s: Session, ids: list[int]) -> None:
        self.s, self.ids = s, ids

    def __len__(self) -> int:
        return len(self.ids)

    @overload
    def __getitem__(self, index: int) -> ScaleSetVm: ...

    @overload
    def __getitem__(self, index: slice) -> list[ScaleSetVm]: ...

    def __getitem__(self, index: int | slice) -> ScaleSetVm | list[ScaleSetVm]:
        ids = self.ids[index] if isinstance(index, slice) else [self.ids[index]]
        rows = {r.id: r for r in self.s.scalars(select(ScaleSetVm).where(ScaleSetVm.id.in_(ids)))} if ids else {}
        found = [rows[i] for i in ids if i in rows]  # a row deleted meanwhile is left out of the page
        return found if isinstance(index, slice) else found[0]
