"""The provider registry's api-version ordering."""

from __future__ import annotations

from altostratus.arm.registry import sort_versions


def test_versions_newest_first() -> None:
    assert sort_versions(["2017-03-30", "2020-06-01-preview", "2020-06-01", "2019-07-01"]) == (
        "2020-06-01",
        "2020-06-01-preview",
        "2019-07-01",
        "2017-03-30",
    )
