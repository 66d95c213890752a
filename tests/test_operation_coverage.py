"""Every operation of the official SDK that an Azure Stack Hub tenant can call is either exercised by a test or
listed below as answering as Azure does, with the reason (issue 17).

The operations are found by introspection, on every SDK line this venv has (the 2018-03-01 and 2020-09-01 hybrid
profiles in ``.venv``, the current releases in ``.venv-current``): the public methods of the scale-set, scale-set
VM, scale-set extension, rolling-upgrade, image, usage, size and SKU operation groups of azure-mgmt-compute, and of
the resource-group, resource, provider, deployment, deployment-operation, subscription and tenant groups of
azure-mgmt-resource. A method counts as exercised when a test module calls it on its operation group
(``client.<group>.<method>(...)``, or through a name bound to the group, ``sets = cc.virtual_machine_scale_sets``),
found by reading the test files' syntax trees: the record of what is tested is the tests themselves, so it cannot
drift from them. The SDK tests run every line they name, so a call counts for the lines of the venv it runs in.

When this test fails, it prints the operations left per line: write the test that calls each one, or, for an
operation that answers exactly as Azure answers in that situation without a test of its own, add it to
``ANSWERS_AS_AZURE`` with the reason.
"""

from __future__ import annotations

import ast
import inspect
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests.support.sdk import SdkLine

TESTS = Path(__file__).parent
GROUPS: dict[str, tuple[str, ...]] = {
    "compute": (
        "virtual_machine_scale_sets", "virtual_machine_scale_set_vms", "virtual_machine_scale_set_extensions",
        "virtual_machine_scale_set_rolling_upgrades", "images", "usage", "virtual_machine_sizes", "resource_skus",
    ),
    "resources": ("resource_groups", "resources", "providers"),
    "deployments": ("deployments", "deployment_operations"),
    "subscriptions": ("subscriptions", "tenants"),
}  # fmt: skip
ALL_GROUPS = frozenset(g for groups in GROUPS.values() for g in groups)

# Operations that answer as Azure does without a test that calls them: "group.method" -> why that is right.
ANSWERS_AS_AZURE: dict[str, str] = {}

# ==================================================================================================================
# IN PROGRESS ON ANOTHER BRANCH (issue 17's compute half has landed; the az CLI's SKUs have not). These operations
# are built and tested on those branches; the merger removes each entry as its branch lands (this test then
# demands the test that calls it). Nothing outside this block may be listed for that reason.
IN_PROGRESS_ELSEWHERE: dict[str, str] = {}
# ================================================================================ END OF IN PROGRESS ON ANOTHER BRANCH


class _NoCredential:
    """The clients are only introspected, never called: no token is ever asked for."""

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        raise AssertionError("the coverage test makes no request")


def line_clients(line: SdkLine) -> dict[str, Any]:
    """The line's clients by the GROUPS key whose operation groups they carry."""
    cred, sub = _NoCredential(), "00000000-0000-0000-0000-000000000000"
    from azure.mgmt.compute import ComputeManagementClient

    if line.hybrid:
        from azure.mgmt.resource import ResourceManagementClient, SubscriptionClient

        profile = {"profile": line.profile}
        resources = ResourceManagementClient(cred, sub, **profile)
        return {
            "compute": ComputeManagementClient(cred, sub, **profile),
            "resources": resources,
            "deployments": resources,
            "subscriptions": SubscriptionClient(cred, **profile),
        }
    from azure.mgmt.resource.deployments import DeploymentsMgmtClient
    from azure.mgmt.resource.resources import ResourceManagementClient
    from azure.mgmt.resource.subscriptions import SubscriptionClient

    return {
        "compute": ComputeManagementClient(cred, sub),
        "resources": ResourceManagementClient(cred, sub),
        "deployments": DeploymentsMgmtClient(cred, sub),
        "subscriptions": SubscriptionClient(cred),
    }


def operations(line: SdkLine) -> set[str]:
    """``group.method`` for every public method of the operation groups on that line."""
    found: set[str] = set()
    for key, client in line_clients(line).items():
        for group in GROUPS[key]:
            ops = getattr(client, group, None)
            if ops is None:  # a group the line does not have
                continue
            found |= {
                f"{group}.{name}"
                for name, _ in inspect.getmembers(type(ops), inspect.isfunction)
                if not name.startswith("_")
            }
    return found


def _group_aliases(tree: ast.AST) -> dict[str, str]:
    """Names bound to an operation group: ``sets = cc.virtual_machine_scale_sets`` or ``a, b = c.x, c.y``."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            pairs: list[tuple[ast.expr, ast.expr]] = [(target, node.value)]
            if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                pairs = list(zip(target.elts, node.value.elts, strict=False))
            for name, value in pairs:
                if isinstance(name, ast.Name) and isinstance(value, ast.Attribute) and value.attr in ALL_GROUPS:
                    aliases[name.id] = value.attr
    return aliases


@cache
def exercised() -> dict[str, set[str]]:
    """``group.method`` -> the test files that call it."""
    calls: dict[str, set[str]] = {}
    for path in sorted(TESTS.rglob("*.py")):
        if path.name == Path(__file__).name:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases = _group_aliases(tree)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            owner = node.func.value
            group = None
            if isinstance(owner, ast.Attribute) and owner.attr in ALL_GROUPS:
                group = owner.attr
            elif isinstance(owner, ast.Name):
                group = aliases.get(owner.id)
            if group is not None:
                calls.setdefault(f"{group}.{node.func.attr}", set()).add(str(path.relative_to(TESTS.parent)))
    return calls


def test_every_operation_is_tested_or_answers_as_azure(sdk: SdkLine) -> None:
    ops = operations(sdk)
    assert len(ops) > 60, f"introspection found only {len(ops)} operations on {sdk}: the SDK layout changed"
    tested = exercised()
    missing = sorted(op for op in ops if op not in tested and op not in ANSWERS_AS_AZURE)
    not_in_progress = [op for op in missing if op not in IN_PROGRESS_ELSEWHERE]
    in_progress = [op for op in missing if op in IN_PROGRESS_ELSEWHERE]
    covered = len(ops) - len(missing)
    summary = (
        f"{sdk}: {covered} of {len(ops)} operations tested or answering as Azure does; "
        f"{len(in_progress)} in progress on another branch"
    )
    print(summary)  # shown with -s: what is left at a glance
    assert not not_in_progress, (
        f"{summary}; {len(not_in_progress)} neither tested nor listed in ANSWERS_AS_AZURE:\n  "
        + "\n  ".join(not_in_progress)
    )


def test_the_compatibility_page_lists_every_operation(sdk: SdkLine) -> None:
    """docs/compatibility.md has a row for each operation of each line (regenerate its tables when an SDK grows)."""
    page = (TESTS.parent / "docs" / "compatibility.md").read_text(encoding="utf-8")
    absent = sorted(op for op in operations(sdk) if f"| `{op}` |" not in page)
    assert not absent, f"docs/compatibility.md has no row for: {absent}"


def test_the_lists_only_name_what_no_test_calls() -> None:
    """An operation that a test now calls leaves the lists (the in-progress block shrinks as branches land)."""
    tested = exercised()
    stale = {op: sorted(tested[op]) for op in (*ANSWERS_AS_AZURE, *IN_PROGRESS_ELSEWHERE) if op in tested}
    assert not stale, f"tested now, remove from the lists: {stale}"
    assert not set(ANSWERS_AS_AZURE) & set(IN_PROGRESS_ELSEWHERE)
    for op in (*ANSWERS_AS_AZURE, *IN_PROGRESS_ELSEWHERE):
        group, _, method = op.partition(".")
        assert group in ALL_GROUPS and method, f"'{op}' is not group.method of a covered operation group"


@pytest.mark.parametrize("source", ["tests/compute/test_sdk_scale_sets.py", "tests/resources/test_moves.py"])
def test_the_scan_sees_calls_through_aliases(source: str) -> None:
    """The scan itself: calls through a bound name count (``sets.begin_start``), and so do direct ones."""
    tested = exercised()
    if source.endswith("test_sdk_scale_sets.py"):
        assert source in tested["virtual_machine_scale_sets.begin_start"]
    else:
        assert source in tested["resources.begin_move_resources"]
