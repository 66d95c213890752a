"""uniqueString() and guid() against the known values in the reference notes (§2.4, §2.6)."""

from __future__ import annotations

import uuid

import pytest

from altostratus.templates.hashing import ARM_GUID_NAMESPACE, arm_guid, murmur64, unique_string
from tests.support.templates import ev

UNIQUE_STRING_VECTORS = [
    # observed on real ARM (Kingsland.ArmLinter)
    (("aaa",), "zavj67f3en4hc"),
    (("bbb",), "w5eragfxe33cy"),
    (("zzz",), "cryksdzzzawae"),
    (("xxx", "yyy", "zzz"), "lghi7k5js7itq"),
    # the bash port's self-test vectors
    (("test",), "rbgf3xv4ufgzg"),
    (("hello", "world"), "a7wkljktk6wne"),
    (("foo", "bar", "baz"), "xzi4ioaxtmth4"),
]


@pytest.mark.parametrize(("parts", "expected"), UNIQUE_STRING_VECTORS)
def test_unique_string_known_values(parts: tuple[str, ...], expected: str) -> None:
    assert unique_string(*parts) == expected
    quoted = ", ".join(f"'{p}'" for p in parts)
    assert ev(f"[uniqueString({quoted})]") == expected


def test_unique_string_shape_and_tail_lengths() -> None:
    # Every tail length of the 8-byte block loop (0..7) and multi-byte UTF-8 input.
    for text in ["", "a", "ab", "abc", "abcd", "abcde", "abcdef", "abcdefg", "abcdefgh", "abcdefghi", "ü€😀"]:
        value = unique_string(text)
        assert len(value) == 13
        assert set(value) <= set("abcdefghijklmnopqrstuvwxyz234567")
    assert unique_string("a", "b") == unique_string("a-b")  # arguments are joined with '-'
    assert unique_string("A") != unique_string("a")  # case-sensitive input


def test_murmur64_is_deterministic_64_bit() -> None:
    assert murmur64(b"") == murmur64(b"")
    assert 0 <= murmur64(b"aaa") < 2**64


@pytest.mark.parametrize(
    ("parts", "expected"),
    [(("a", "b", "c"), "a98fa280-e03f-5afa-8d8e-92d0a9c201e8")],
)
def test_guid_known_values(parts: tuple[str, ...], expected: str) -> None:
    assert arm_guid(*parts) == expected
    assert ev("[guid('a', 'b', 'c')]") == expected


def test_guid_is_uuid5_in_arm_namespace() -> None:
    value = ev("[guid(resourceGroup().id, deployment().name)]")
    parsed = uuid.UUID(value)
    assert parsed.version == 5 and value == value.lower()
    assert value == str(uuid.uuid5(ARM_GUID_NAMESPACE, ev("[resourceGroup().id]") + "-deployment"))
