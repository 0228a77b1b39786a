"""The hostile-input suite's fixture: `with unchanged(): ...` around every refused request."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.webapp.hostile.checks import database_state, files_state


@pytest.fixture
def unchanged():
    """`with unchanged(): ...` asserts the block changed no row count and no file under the roots."""

    @contextmanager
    def check() -> Iterator[None]:
        rows, files = database_state(), files_state()
        yield
        assert database_state() == rows, "a refused request changed the database"
        assert files_state() == files, "a refused request left files behind"

    return check
