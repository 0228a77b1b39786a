"""Upload caps hold while the body streams: a file over its cap stops the reading, not a later check.

The parser tests feed Django's MultiPartParser a generated 64 MB body and count the bytes it
reads; with a 1 MB cap it must stop a few 64 KB chunks past the cap.
"""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import QueryDict
from django.http.multipartparser import MultiPartParser
from django.test import RequestFactory

from tests.webapp.factories import TRAIN_ROWS, tsv
from webapp.registry import archives, upload_limits
from webapp.registry.models import Checkpoint, Dataset

BOUNDARY = "distillery-test-boundary"
MB = 2**20


class GeneratedBody(io.RawIOBase):
    """A multipart body with one `field` file of `size` bytes, generated as it is read; counts what is read."""

    def __init__(self, field: str, size: int):
        self.head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nbig\r\n"
                     f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"f.bin\"\r\n"
                     "Content-Type: application/octet-stream\r\n\r\n").encode()
        self.tail = f"\r\n--{BOUNDARY}--\r\n".encode()
        self.length = len(self.head) + size + len(self.tail)
        self.position = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = self.length - self.position if n is None or n < 0 else min(n, self.length - self.position)
        out = bytearray()
        while len(out) < n:
            p = self.position + len(out)
            body_end = self.length - len(self.tail)
            if p < len(self.head):
                out += self.head[p:p + n - len(out)]
            elif p < body_end:
                out += b"x" * min(n - len(out), body_end - p)
            else:
                out += self.tail[p - body_end:p - body_end + n - len(out)]
        self.position += len(out)
        return bytes(out)


def parse(body: GeneratedBody, handler) -> tuple[QueryDict, dict]:
    meta = {"CONTENT_TYPE": f"multipart/form-data; boundary={BOUNDARY}", "CONTENT_LENGTH": str(body.length)}
    post, files = MultiPartParser(meta, body, [handler]).parse()
    return post, files


def test_a_dataset_split_over_the_cap_stops_the_reading_early(rf: RequestFactory):
    request = rf.post("/datasets/new/")
    body = GeneratedBody("train_file", 64 * MB)
    post, files = parse(body, upload_limits.CappedUploadHandler(request, limit=1 * MB))
    assert request.upload_too_large == "train_file" and "train_file" not in files
    assert post["name"] == "big"
    assert body.position < 1 * MB + 4 * 64 * 1024, f"read {body.position:,} of {body.length:,} bytes"


def test_a_file_under_the_cap_is_received_whole(rf: RequestFactory):
    request = rf.post("/datasets/new/")
    body = GeneratedBody("train_file", MB // 2)
    _, files = parse(body, upload_limits.CappedUploadHandler(request, limit=1 * MB))
    assert request.upload_too_large is False and files["train_file"].size == MB // 2
    assert body.position == body.length


def test_a_checkpoint_archive_over_the_cap_stops_the_reading_early(rf: RequestFactory, settings):
    settings.MAX_CHECKPOINT_UPLOAD_MB = 1
    request = rf.post("/checkpoints/new/")
    body = GeneratedBody("archive", 64 * MB)
    _, files = parse(body, archives.CappedUploadHandler(request))
    assert request.upload_too_large == "archive" and "archive" not in files
    assert body.position < 1 * MB + 4 * 64 * 1024


def test_the_api_refuses_an_oversized_split_on_its_field(api, acme, settings):
    settings.MAX_DATASET_UPLOAD_MB = 1
    big = tsv(TRAIN_ROWS) * (1_200_000 // len(tsv(TRAIN_ROWS)))
    response = api.post("/api/datasets/", {"name": "big", "train_file": SimpleUploadedFile("t.tsv", big.encode())})
    assert response.status_code == 413
    assert "over the limit of 1 MB per split" in response.json()["fields"]["train_file"][0]
    assert not Dataset.objects.exists()


@pytest.mark.parametrize("url, field", [("/datasets/new/", "train_file"), ("/checkpoints/new/", "archive")])
def test_a_body_declared_over_the_caps_is_refused_unread(alice_client, acme, settings, url, field):
    settings.MAX_DATASET_UPLOAD_MB = settings.MAX_CHECKPOINT_UPLOAD_MB = 1
    data = b"x" * (5 * MB)
    response = alice_client.post(url, {"team": acme.pk, "name": "big", field: SimpleUploadedFile("f", data)})
    assert response.status_code == 413 and "limit" in response.content.decode()
    assert not Dataset.objects.exists() and not Checkpoint.objects.exists()


def test_the_upload_settings_bound_what_is_held_in_memory(settings):
    assert settings.FILE_UPLOAD_MAX_MEMORY_SIZE <= 2.5 * MB
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE <= 10 * MB
    assert settings.DATA_UPLOAD_MAX_NUMBER_FILES <= 10
