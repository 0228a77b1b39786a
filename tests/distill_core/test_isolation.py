"""distill_core is a library: importing every module loads neither Django nor Celery."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import distill_core

REPO = Path(__file__).resolve().parents[2]


def test_no_module_of_distill_core_imports_django_or_celery():
    modules = [f"distill_core.{m.name}" for m in pkgutil.iter_modules(distill_core.__path__)]
    assert "distill_core.distiller" in modules and "distill_core.__main__" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'celery', 'kombu', 'webapp', 'workers'))\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
