"""Unique resource names, so tests sharing one server never collide."""

from __future__ import annotations

import uuid


def unique(prefix: str = "rg") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
