"""The fine-tuning scale benchmark at test size: a 100k-row train split fine-tunes with the RSS of a 5k-row one.

Each size runs in its own subprocess (bench/finetune_scale.py); the whole run counts, reading and
tokenising included. The bound is generous (not a timing test): the in-memory path this replaced
held the texts, the tokenizer's Python lists and a padded id matrix, and grew by about 450 MiB
between these two sizes (docs/BENCHMARKS.md, "Teacher fine-tuning larger than memory").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.bench.test_smoke import REPO

pytestmark = pytest.mark.slow  # fine-tunes on 5k and 100k rows in subprocesses


def test_a_100k_row_split_fine_tunes_with_bounded_rss(tmp_path):
    env = {**os.environ, "DISTILLERY_VAR_DIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "finetune_scale.py"), "--rows", "5000", "100000",
                           "--steps", "20", "--root", str(tmp_path / "scale")],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    small, large = out["runs"]
    assert (small["rows"], large["rows"]) == (5000, 100000) and large["train_examples"] == 100000
    assert large["steps"] == small["steps"] == 20 and large["samples_per_s"] > 0
    assert list(large["phase_seconds"]) == ["reading", "tokenising", "training", "evaluating", "export", "size"]
    growth = large["peak_rss_mb"] - small["peak_rss_mb"]
    assert growth < 80, out  # MiB, for 95,000 more rows (the in-memory path: ~450)
