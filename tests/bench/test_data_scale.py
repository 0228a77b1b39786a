"""The data-scale benchmark at test size: a 200k-row train split (100k with augmentation, whose copies are
streamed to disk like the split) trains with the RSS of a 10k-row one.

Each size runs in its own subprocess (bench/data_scale.py); the whole run counts, reading,
tokenising and the teacher pass included. The bound is generous (not a timing test): the in-memory
path this replaced held the 200k texts and a padded (N, 32) int64 id matrix (51 MB on its own).
Batches of 256 keep the teacher pass (batched as the training batch, at least 64) short.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.bench.test_smoke import REPO

pytestmark = pytest.mark.slow  # trains on 10k and 200k rows in subprocesses


def scale(tmp_path, large_rows: int, *extra: str) -> tuple[dict, dict, dict]:
    """The small and large runs of bench/data_scale.py at 10k and `large_rows` rows, and its whole output."""
    env = {**os.environ, "DISTILLERY_VAR_DIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "data_scale.py"), "--rows", "10000", str(large_rows),
                           "--steps", "20", "--batch-size", "256", "--root", str(tmp_path / "scale"), *extra],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    small, large = out["runs"]
    assert (small["rows"], large["rows"]) == (10000, large_rows)
    assert large["steps"] == small["steps"] == 20 and large["samples_per_s"] > 0
    return small, large, out


def test_a_200k_row_split_trains_with_bounded_rss(tmp_path):
    small, large, out = scale(tmp_path, 200000)
    assert large["train_examples"] == 200000
    growth = large["peak_rss_mb"] - small["peak_rss_mb"]
    assert growth < 40, out  # MiB, for 190,000 more rows


def test_an_augmented_100k_row_split_trains_with_bounded_rss(tmp_path):
    # About one copy a row, so the copies grow with the split. 100k rows (half the plain test's, for the suite's
    # time) still tell the paths apart: the in-memory one held ~180k texts and a padded id matrix (~60 MB).
    small, large, out = scale(tmp_path, 100000, "--augment")
    assert 1.5 * 100000 < large["train_examples"] <= 2 * 100000 and out["augment"]
    growth = large["peak_rss_mb"] - small["peak_rss_mb"]
    assert growth < 40, out  # MiB, for about 170,000 more rows and copies
