"""An account's blobs go with the account: whichever way its row is deleted (``DELETE`` of the account, or the
deletion of its resource group), its containers, blobs and their references go in the same transaction.

Account rows are generic resources (resources/generic.py deletes them with no provider hook), so this listens to
the ORM: before a flush that deletes a storage account's row, the data plane's rows of that account are deleted
too. The content files are left to the blob store's collector (an instance booted from one keeps it). Without
this, a new account of the same name (names are global) would see the blobs of the old one.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, event, select
from sqlalchemy.orm import Session

from altostratus.blobs.models import BlobRef
from altostratus.storage.accounts import NS
from altostratus.storage.blob_content import HOLDER
from altostratus.storage.blob_models import StorageBlob, StorageContainer
from altostratus.store.models import Resource

TYPE_KEY = f"{NS}/storageAccounts".lower()
_installed = False


def _delete_account_data(session: Session, _context: Any, _instances: Any) -> None:
    accounts = [r.name_key for r in session.deleted if isinstance(r, Resource) and r.type_key == TYPE_KEY]
    if not accounts:
        return
    blob_ids = select(StorageBlob.id).where(StorageBlob.account.in_(accounts))
    held = [str(i) for i in session.scalars(blob_ids)]
    if held:
        session.execute(delete(BlobRef).where(BlobRef.holder_kind == HOLDER, BlobRef.holder_id.in_(held)))
    session.execute(delete(StorageBlob).where(StorageBlob.account.in_(accounts)))
    session.execute(delete(StorageContainer).where(StorageContainer.account.in_(accounts)))


def install() -> None:
    """Listen on every session (once per process)."""
    global _installed
    if not _installed:
        event.listen(Session, "before_flush", _delete_account_data)
        _installed = True
