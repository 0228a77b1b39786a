"""Per-file size caps enforced while a multipart body streams in, not after it has been received.

A view installs `CappedUploadHandler` before anything reads the body (so it is CSRF-exempt and
checks the token itself afterwards, see views_registry). Once one file passes its cap, the
handler deletes that file's partial temp file and raises StopUpload(connection_reset=True): the
parser stops reading, so the rest of the body is never received (gunicorn's sync workers close
the connection after the answer). The view then answers 413 with the message on the field.
"""

from __future__ import annotations

from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler
from django.http import HttpRequest

SLACK_BYTES = 1024 * 1024  # room for the form's other fields and the multipart framing


class CappedUploadHandler(TemporaryFileUploadHandler):
    """Stream files to temp files; stop reading the body once one file is over `limit` bytes.

    Sets `request.upload_too_large` (False, or the name of the field whose file was refused).
    """

    def __init__(self, request: HttpRequest | None = None, *, limit: int):
        super().__init__(request)
        self.limit = limit
        self.received = 0
        if request is not None:
            request.upload_too_large = False

    def new_file(self, *args, **kwargs):
        self.received = 0
        super().new_file(*args, **kwargs)

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > self.limit:
            if self.request is not None:
                self.request.upload_too_large = self.field_name
            raise StopUpload(connection_reset=True)  # the parser closes (and so deletes) the partial temp file
        return super().receive_data_chunk(raw_data, start)


def install(request: HttpRequest, limit: int) -> None:
    """Cap every file of `request` at `limit` bytes; call before the body is read."""
    request.upload_handlers = [CappedUploadHandler(request, limit=limit)]


def declared_too_large(request: HttpRequest, most: int) -> bool:
    """True when the declared body is over `most` bytes of files (plus SLACK_BYTES): refuse it unread."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return False
    return length > most + SLACK_BYTES
