"""The function catalogue: importing this module registers every built-in function.

Functions are grouped by the documentation's categories in ``functions_<category>.py``; this module only imports
them (registration is a side effect of the ``@builtin`` decorator) and answers "which functions exist", so the
interpreter, the docs and the per-function tests all see the same table.
"""

from __future__ import annotations

from altostratus.templates import (  # noqa: F401 - imported for their registrations
    functions_array,
    functions_cidr,
    functions_date,
    functions_deployment,
    functions_lambda,
    functions_logical,
    functions_numeric,
    functions_object,
    functions_resource,
    functions_string,
)
from altostratus.templates.registry import FUNCTIONS, FunctionSpec

__all__ = ["FUNCTIONS", "FunctionSpec", "function_names", "lookup"]


def lookup(name: str) -> FunctionSpec | None:
    """The built-in called ``name`` (any case), or None. ``list*`` names are not in the table."""
    return FUNCTIONS.get(name.casefold())


def function_names() -> list[str]:
    """Canonical names of every built-in, sorted (``list*`` stands for the whole ``list`` family)."""
    return sorted([spec.name for spec in FUNCTIONS.values()] + ["list*"], key=str.casefold)
