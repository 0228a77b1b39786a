"""tar extension headers that declare huge payloads are refused before tarfile reads them.

The bombs are a few KB of gzip: one header claiming a 1 GiB long name (or pax record set)
followed by 8 MB of its payload, so an unbounded reader would allocate at least that much.
"""

from __future__ import annotations

import gzip
import io
import tarfile
import time
import tracemalloc

import pytest

from tests.webapp.factories import tar_bytes
from webapp.registry import archives

GIB = 2**30
PEAK_LIMIT = 100 * 2**20


def bomb(kind: bytes, declared: int = GIB, payload: int = 8 * 2**20) -> bytes:
    """A .tar.gz whose first header is `kind` ('L', 'K', 'x', 'g') claiming `declared` bytes of payload."""
    info = tarfile.TarInfo("././@LongLink")
    info.type, info.size = kind, declared
    header = info.tobuf(format=tarfile.GNU_FORMAT if kind in (b"L", b"K") else tarfile.USTAR_FORMAT)
    assert len(header) == tarfile.BLOCKSIZE and header[156:157] == kind
    record = b"a" * payload if kind in (b"L", b"K") else (b"%d path=" % (payload + 8)) + b"a" * (payload - 11) + b"\n"
    return gzip.compress(header + record, compresslevel=9)


def refuse_measured(data: bytes, target) -> tuple[str, float, int]:
    """(the refusal's message, seconds, peak bytes allocated while unpacking)."""
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(archives.ArchiveRefused) as refused:
            archives.unpack(io.BytesIO(data), target)
    finally:
        seconds = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return refused.value.message, seconds, peak


@pytest.mark.parametrize("kind, what", [(b"L", "long-name header"), (b"K", "long-name header"),
                                        (b"x", "pax header"), (b"g", "pax header")])
def test_a_header_claiming_a_gigabyte_is_refused_quickly_in_bounded_memory(tmp_path, kind, what):
    data = bomb(kind)
    assert len(data) < 64 * 1024
    message, seconds, peak = refuse_measured(data, tmp_path)
    assert f"a {what} of 1,073,741,824 bytes" in message and "at most 65,536" in message
    assert seconds < 5 and peak < PEAK_LIMIT
    assert list(tmp_path.iterdir()) == []


def test_a_chain_of_small_long_name_headers_is_refused(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.GNU_FORMAT) as archive:
        for _ in range(archives.MAX_TAR_HEADER_CHAIN + 1):  # each long name overrides the previous one
            info = tarfile.TarInfo("././@LongLink")
            info.type, info.size = tarfile.GNUTYPE_LONGNAME, 200
            archive.addfile(info, io.BytesIO(b"n" * 200))
    message, _, _ = refuse_measured(buffer.getvalue(), tmp_path)
    assert "too many long-name headers" in message


def test_a_sparse_member_is_refused(tmp_path):
    info = tarfile.TarInfo("weights.bin")
    info.type, info.size = tarfile.GNUTYPE_SPARSE, 0
    data = gzip.compress(info.tobuf(format=tarfile.GNU_FORMAT) + b"\0" * 1024)
    message, _, _ = refuse_measured(data, tmp_path)
    assert "is a sparse file" in message


def test_ordinary_long_names_still_unpack(tmp_path):
    name = "/".join(["x" * 60] * 5) + ".json"  # over ustar's 100 bytes: written with a long-name header
    archives.unpack(io.BytesIO(tar_bytes({name: b"{}"})), tmp_path)
    assert (tmp_path / name).read_bytes() == b"{}"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo("p/" + "y" * 200)
        info.size, info.pax_headers = 2, {"comment": "z" * 1000}
        archive.addfile(info, io.BytesIO(b"ok"))
    buffer.seek(0)
    archives.unpack(buffer, tmp_path)
    assert (tmp_path / "p" / ("y" * 200)).read_bytes() == b"ok"
