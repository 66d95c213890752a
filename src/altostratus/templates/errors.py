"""The one exception the template language raises.

ARM reports every problem with a template (bad JSON, an expression that does not parse, a function that fails, a
parameter that does not validate) as ``InvalidTemplate`` with the JSON path and, when it knows them, the line and
column of the offending value. Keeping a single exception type with those fields lets the deployment engine turn
any failure into that envelope without knowing which layer raised it.
"""

from __future__ import annotations

from typing import Any

TEMPLATE_EXPRESSIONS_HELP = "Please see https://aka.ms/arm-template-expressions for usage details."


class TemplateError(Exception):
    """A template problem: ``code`` (``InvalidTemplate`` unless said otherwise), message, JSON path, position.

    ``line``/``column`` are 1-based. For a bare expression (no template around it) they point into the expression
    text; once the error is located in a template (:meth:`locate`) they point at the JSON value in the file.
    ``position`` is the 0-based offset inside the expression text for parse errors, as ARM's messages quote it.
    """

    def __init__(
        self,
        message: str,
        path: str = "",
        line: int | None = None,
        column: int | None = None,
        *,
        code: str = "InvalidTemplate",
        position: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line
        self.column = column
        self.code = code
        self.position = position

    def __str__(self) -> str:
        where = []
        if self.path:
            where.append(f"path '{self.path}'")
        if self.line is not None:
            where.append(f"line {self.line}, column {self.column}")
        return f"{self.message} ({', '.join(where)})" if where else self.message

    def with_path(self, path: str) -> TemplateError:
        """Set the JSON path unless a deeper (more precise) one is already known."""
        if not self.path and path:
            self.path = path
        return self

    def locate(self, source: Any) -> TemplateError:
        """Fill line/column from a :class:`~altostratus.templates.loader.SourceMap` for :attr:`path`."""
        if source is not None and self.path:
            pos = source.position(self.path)
            if pos is not None:
                self.line, self.column = pos
        return self

    def additional_info(self) -> dict[str, Any]:
        """ARM's ``TemplateViolation`` additionalInfo entry for this error."""
        return {
            "type": "TemplateViolation",
            "info": {"lineNumber": self.line or 0, "linePosition": self.column or 0, "path": self.path},
        }


def function_error(name: str, detail: str) -> TemplateError:
    """The wrapper ARM puts around a failing built-in function."""
    return TemplateError(
        f"Unable to evaluate template language function '{name}': {detail} {TEMPLATE_EXPRESSIONS_HELP}"
    )


class DeferredValue(TemplateError):
    """A value only a running deployment can know (``reference()``/``list*()`` of a resource not deployed yet).

    Validation evaluates everything else and treats this as "checked later", never as an error.
    """
