"""Reading templates as ARM does: UTF-8 BOM, comments, trailing commas, multi-line strings; JSON errors with
line/column; value positions for error messages."""

from __future__ import annotations

import pytest

from altostratus.templates import TemplateError, evaluate_outputs, loads, prepare, read_template
from altostratus.templates.loader import SourceMap, strip_comments
from tests.support.templates import context

TEMPLATE_WITH_EVERYTHING = (
    "\ufeff{\n"
    '  "$schema": "http://schema.management.azure.com/schemas/2015-01-01/deploymentTemplate.json",  // no trailing #\n'
    '  "contentVersion": "1.0.0.0",\n'
    "  /* a block comment\n"
    "     over two lines */\n"
    '  "parameters": {\n'
    '    "url": {"type": "string", "defaultValue": "http://example.com/a//b"},  // "//" inside a string stays\n'
    '    "note": {"type": "string", "defaultValue": "/* not a comment */"},\n'
    "  },\n"
    '  "variables": {\n'
    '    "cloudConfig": "#cloud-config\n'
    "write_files:\n"
    '  - path: /etc/x",\n'
    '    "quote": "a \\"quoted\\" // value",\n'
    "  },\n"
    '  "resources": [],\n'
    '  "outputs": {\n'
    '    "url": {"type": "string", "value": "[parameters(\'url\')]"},\n'
    '    "note": {"type": "string", "value": "[parameters(\'note\')]"},\n'
    '    "cloudConfig": {"type": "string", "value": "[variables(\'cloudConfig\')]"},\n'
    '    "quote": {"type": "string", "value": "[variables(\'quote\')]"},\n'
    "  },\n"
    "}\n"
)


@pytest.mark.parametrize("as_bytes", [False, True])
def test_bom_comments_trailing_commas_multiline_strings(as_bytes: bool) -> None:
    source = TEMPLATE_WITH_EVERYTHING.encode("utf-8") if as_bytes else TEMPLATE_WITH_EVERYTHING
    if as_bytes:
        assert source[:3] == b"\xef\xbb\xbf"
    doc, source_map = read_template(source)
    ctx = prepare(doc, {}, context(), source=source_map)
    result = {name: out["value"] for name, out in evaluate_outputs(doc["outputs"], ctx).items()}
    assert result == {
        "url": "http://example.com/a//b",
        "note": "/* not a comment */",
        "cloudConfig": "#cloud-config\nwrite_files:\n  - path: /etc/x",
        "quote": 'a "quoted" // value',
    }


def test_strip_comments_keeps_positions() -> None:
    text = '{"a": 1, // c\n /* x\n y */ "b": [1, 2, ], }'
    stripped = strip_comments(text)
    assert len(stripped) == len(text)
    assert stripped.count("\n") == text.count("\n")
    assert loads(text) == {"a": 1, "b": [1, 2]}


def test_utf16_with_bom() -> None:
    assert loads('{"a": "ü"}'.encode("utf-16")) == {"a": "ü"}


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ('{\n  "a": 1\n  "b": 2\n}', 3, 3),  # missing comma
        ('{\n  "a": [1, 2\n}', 3, 1),
        ("{\n  // only a comment\n  'single': 1\n}", 3, 3),
        ('\ufeff{"a": }', 1, 7),
    ],
)
def test_json_errors_report_line_and_column(text: str, line: int, column: int) -> None:
    with pytest.raises(TemplateError) as err:
        read_template(text)
    assert (err.value.line, err.value.column) == (line, column)
    assert f"at line {line}, column {column}" in err.value.message
    assert err.value.code == "InvalidTemplate"


def test_template_must_be_an_object() -> None:
    with pytest.raises(TemplateError, match="must be a JSON object"):
        read_template("[1, 2]")


def test_source_map_positions() -> None:
    text = (
        "{\n"
        '  "resources": [\n'
        "    {\n"
        '      "name": "[concat(\'a\')]",\n'
        '      "properties": {"odd.key": {"x": 1}, "list": [10, {"deep": true}]}\n'
        "    }\n"
        "  ]\n"
        "}\n"
    )
    source = SourceMap(text)
    assert source.position("") == (1, 1)
    assert source.position("resources") == (2, 16)
    assert source.position("resources[0]") == (3, 5)
    assert source.position("resources[0].name") == (4, 15)
    assert source.position("resources[0].properties['odd.key'].x") == (5, 39)
    assert source.position("resources[0].properties.list[1].deep") == (5, 65)
    assert source.position("RESOURCES[0].NAME") == (4, 15)  # case-insensitive fallback
    assert source.position("resources[0].properties.missing") == source.position("resources[0].properties")
