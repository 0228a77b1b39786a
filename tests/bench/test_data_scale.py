"""The data-scale benchmark at test size: a 200k-row train split trains with the RSS of a 20k-row one.

Each size runs in its own subprocess (bench/data_scale.py); the whole run counts, reading,
tokenising and the teacher pass included. The bound is generous (not a timing test): the in-memory
path this replaced held the 200k texts and a padded (N, 32) int64 id matrix (51 MB on its own).
"""

from __future__ import annotations

from tests.bench.test_smoke import run_script


def test_a_200k_row_split_trains_with_bounded_rss(tmp_path):
    out = run_script("data_scale.py", ["--rows", "20000", "200000", "--steps", "30", "--root", str(tmp_path / "scale")],
                     tmp_path)
    small, large = out["runs"]
    assert (small["rows"], large["rows"]) == (20000, 200000) and large["train_examples"] == 200000
    assert large["steps"] == small["steps"] == 30 and large["samples_per_s"] > 0
    growth = large["peak_rss_mb"] - small["peak_rss_mb"]
    assert growth < 40, out  # MiB, for 180,000 more rows
