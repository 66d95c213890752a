"""OData $filter parsing for tag filters."""

from __future__ import annotations

import pytest

from altostratus.arm.errors import ArmError
from altostratus.resources.filters import parse_filter, parse_tag_filter


def test_tag_filter() -> None:
    match = parse_tag_filter("tagName eq 'Env' and tagValue eq 'it''s'")
    assert match is not None
    assert match({"env": "it's"}) and not match({"env": "other"}) and not match({})
    assert parse_tag_filter(None) is None and parse_tag_filter("  ") is None
    with pytest.raises(ArmError) as exc:
        parse_filter("location eq 'x'", ("tagname",))
    assert exc.value.status == 400 and exc.value.code == "InvalidFilterInQueryString"
    with pytest.raises(ArmError):
        parse_filter("tagValue eq 'x'", ("tagname", "tagvalue"))
