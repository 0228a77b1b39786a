"""The dataset page's preview against reading the whole train file: seconds and peak memory growth.

    python bench/dataset_preview.py               # a 46 MB TSV of repeated demo titles
    python bench/dataset_preview.py --mb 1        # the smoke size

The file is written under var/bench/. The preview (distill_core.data.read_head, what the page uses)
reads only the rows it shows; read_split (what the page used before, and what a run still uses)
reads and parses every row. Prints one JSON line; the target is a preview whose cost does not grow
with the file.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import _common as common

from distill_core.config import DataConfig
from distill_core.data import read_head, read_split


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=46.0, help="size of the train file to build")
    args = parser.parse_args()
    rows = common.read_tsv(common.DEMO / "train.tsv")
    labels = [str(i) for i in range(len(common.LABELS))]  # the file holds class indices
    chunk = "".join(f"{text}\t{label}\n" for text, label in rows)
    path = common.VAR / "dataset_preview" / "train.tsv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        while fh.tell() < args.mb * 1e6:
            fh.write(chunk)
    base = peak_mb()
    started = time.perf_counter()
    shown = read_head(path, DataConfig(), labels, rows=20)
    preview_s, preview_mb = time.perf_counter() - started, peak_mb() - base
    started = time.perf_counter()
    whole = read_split(path, DataConfig(), labels)
    full_s, full_mb = time.perf_counter() - started, peak_mb() - base
    print(json.dumps({"file_mb": round(path.stat().st_size / 1e6, 1), "rows": len(whole), "shown": len(shown),
                      "preview_seconds": round(preview_s, 4), "preview_peak_rss_growth_mb": round(preview_mb, 1),
                      "whole_file_seconds": round(full_s, 3), "whole_file_peak_rss_growth_mb": round(full_mb, 1)}))


if __name__ == "__main__":
    main()
