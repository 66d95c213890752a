"""Errors of the blob data plane, in the Storage service's XML shape (not ARM's JSON): ``<Error><Code>``.

azure-storage-blob reads the code from the ``x-ms-error-code`` header and the body, and maps it to its
exceptions (``ResourceNotFoundError`` for BlobNotFound, ...), so the codes are the service's own.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from starlette.responses import Response


class BlobError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self, request_id: str, head: bool = False) -> Response:
        body = (
            f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{escape(self.code)}</Code>'
            f"<Message>{escape(self.message)}\nRequestId:{request_id}</Message></Error>"
        )
        headers = {"x-ms-error-code": self.code, "x-ms-request-id": request_id}
        if head:  # HEAD answers carry no body; the code travels in the header
            return Response(None, self.status, headers)
        return Response(body, self.status, headers, media_type="application/xml")
