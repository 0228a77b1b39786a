"""Serve plotly.min.js from the installed plotly package, so pages never need a CDN."""

from __future__ import annotations

from pathlib import Path

from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage

PLOTLY_STATIC_NAME = "vendor/plotly.min.js"


def plotly_js_path() -> Path:
    import plotly

    return Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"


class PlotlyFinder(BaseFinder):
    """Expose exactly one file, vendor/plotly.min.js, from the plotly package."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.storage = FileSystemStorage(location=str(plotly_js_path().parent))

    def check(self, **kwargs):
        return []

    def find(self, path, find_all=False, **kwargs):
        if path == PLOTLY_STATIC_NAME:
            found = str(plotly_js_path())
            return [found] if find_all else found
        return []

    def list(self, ignore_patterns):
        yield "plotly.min.js", _PrefixedStorage(self.storage)


class _PrefixedStorage(FileSystemStorage):
    """Storage whose files collect under vendor/ (collectstatic reads `prefix`)."""

    def __init__(self, inner: FileSystemStorage):
        super().__init__(location=inner.location)
        self.prefix = "vendor"
