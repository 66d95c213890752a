"""VM extensions a scale set may use: those the operator has downloaded from the marketplace, as on Azure Stack Hub.

A handler matches on publisher and type (case-insensitive) and serves a ``typeHandlerVersion`` of the same major
version that it is not older than: ``1.3`` is served by ``1.3.0`` or ``1.5.2`` (Azure runs the newest minor version
of the requested major; Azure Stack's marketplace carries newer handlers than the QuickStart templates name), but
not by ``2.0`` or ``1.2``. Extensions are control plane here (nothing runs them in the guest); the check keeps
templates that would fail on Azure Stack from deploying.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from altostratus.arm.errors import ArmError
from altostratus.marketplace.models import VmExtension


def _numbers(version: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else 0 for p in version.strip().split("."))


def serves(handler: str, requested: str) -> bool:
    have, want = _numbers(handler), _numbers(requested)
    return have[:1] == want[:1] and have >= want


def extensions_of(properties: dict[str, Any]) -> list[dict[str, Any]]:
    profile = properties.get("virtualMachineProfile")
    section = profile.get("extensionProfile") if isinstance(profile, dict) else None
    extensions = section.get("extensions") if isinstance(section, dict) else None
    return [e for e in extensions if isinstance(e, dict)] if isinstance(extensions, list) else []


def check_extensions(s: Session, properties: dict[str, Any]) -> None:
    """Refuse (404 ``ArtifactNotFound``) an extension whose handler is not in this cloud's extension repository."""
    for extension in extensions_of(properties):
        props = extension.get("properties")
        props = props if isinstance(props, dict) else {}
        publisher, kind, version = (str(props.get(k) or "") for k in ("publisher", "type", "typeHandlerVersion"))
        if not publisher or not kind:
            raise ArmError(
                400,
                "InvalidParameter",
                f"The extension '{extension.get('name')}' needs a publisher and a type.",
                "extensionProfile.extensions",
            )
        handlers = s.scalars(
            select(VmExtension).where(
                VmExtension.publisher_key == publisher.lower(),
                VmExtension.type_key == kind.lower(),
                VmExtension.provisioning_state == "Succeeded",
            )
        )
        if not any(not version or serves(h.version, version) for h in handlers):
            raise ArmError(
                404,
                "ArtifactNotFound",
                f"Extension with publisher '{publisher}', type '{kind}', and type handler version '{version}' could "
                "not be found in the extension repository. The operator adds it from the marketplace first.",
                "extensionProfile.extensions",
            )
