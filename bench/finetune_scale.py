"""Peak RSS and samples/s of fine-tuning a teacher as the train split grows (data larger than memory).

    python bench/finetune_scale.py                                  # 100k and 1M synthetic rows
    python bench/finetune_scale.py --rows 5000 100000 --steps 20    # a test-sized run

Each size runs a "finetune_teacher" run (`distill_core.distiller.run`, finetune.py) in its own
subprocess, so each peak is its own: the synthetic TSV splits of bench/data_scale.py (N train rows,
fixed 2,000-row dev and test files) and its base checkpoint, the random 1-layer, 16-wide BERT whose
word-piece vocabulary holds the 5,000 words, fine-tuned with batch 64 for one epoch capped at
`--steps` optimisation steps (drawn from a permutation of all N rows, so they touch the whole
split), a checkpoint every 100 steps. Reading, tokenising (into token stores under a cache directory
removed after each size), training, evaluating on test and the export are all part of the run and
of its peak RSS; samples/s counts only the training loop, from the "start" event to the last step.
Prints one JSON line; the target: peak RSS at the largest size <= 1.2x the smallest.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import _common as common
import data_scale


def child(rows: int, root: Path, steps: int, batch_size: int, threads: int) -> dict:
    """One fine-tuning run of `rows` train rows in this process; its figures."""
    import torch

    from distill_core.config import ExperimentConfig
    from distill_core.distiller import run

    torch.set_num_threads(threads)

    paths = data_scale.dataset(root, rows)
    out, cache = root / f"finetune-{rows}", root / f"finetune-cache-{rows}"
    for stale in (out, cache):
        shutil.rmtree(stale, ignore_errors=True)
    config = ExperimentConfig.from_dict({
        "name": f"finetune-scale-{rows}", "kind": "finetune_teacher", "seed": 0,
        "data": {"train": str(paths["train"]), "dev": str(paths["dev"]), "test": str(paths["test"]),
                 "labels": ["0", "1"], "max_length": 32},
        "teacher": {"path": str(data_scale.teacher(root))},
        "train": {"epochs": 1, "batch_size": batch_size, "max_steps": steps, "learning_rate": 0.001,
                  "log_every": 1, "checkpoint_every": 100, "device": "cpu"},
        "output_dir": str(out),
    })
    timing = data_scale.Timing()
    started = time.monotonic()
    results = run(config, sink=timing, cache_dir=cache)
    step, last, _ = timing.last_step  # (step, wall clock, CPU time)
    marks = sorted(timing.phases.items(), key=lambda kv: kv[1]) + [("end", time.monotonic())]
    shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    return {"rows": rows, "peak_rss_mb": common.peak_rss_mb(), "steps": step,
            "samples_per_s": round(step * batch_size / (last - timing.start), 1),
            "train_examples": results["examples"]["train"], "accuracy": results["student"]["accuracy"],
            "phase_seconds": {name: round(end - begin, 1) for (name, begin), (_, end) in itertools.pairwise(marks)},
            "seconds_total": round(time.monotonic() - started, 1)}


def sizes(rows: list[int], root: Path, steps: int, batch_size: int, threads: int) -> list[dict]:
    """Every size's child run, in its own subprocess; the data and base are written here first."""
    runs = []
    for n in rows:
        data_scale.dataset(root, n)
        data_scale.teacher(root)
        argv = [sys.executable, __file__, "--child", str(n), "--root", str(root), "--steps", str(steps),
                "--batch-size", str(batch_size), "--threads", str(threads)]
        proc = subprocess.run(argv, capture_output=True, text=True,
                              env={**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"})
        if proc.returncode != 0:
            raise SystemExit(f"The {n}-row fine-tune failed:\n{proc.stderr[-4000:]}")
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(f"# {json.dumps(runs[-1])}", file=sys.stderr, flush=True)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    for flag, default, meaning in (("--steps", 300, "training steps per size (the samples/s window)"),
                                   ("--batch-size", 64, "examples a step"), ("--threads", 1, "torch threads")):
        parser.add_argument(flag, type=int, default=default, help=meaning)
    parser.add_argument("--root", type=Path, default=common.VAR / "data_scale")  # shares data_scale's files
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)  # the one size a subprocess runs
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.root, args.steps, args.batch_size, args.threads)))
        return
    started = time.monotonic()
    runs = sizes(args.rows, args.root, args.steps, args.batch_size, args.threads)
    base = runs[0]
    print(json.dumps({
        "runs": runs, "steps": args.steps, "batch_size": args.batch_size, "threads": args.threads,
        "ratios": {str(r["rows"]): {"peak_rss": round(r["peak_rss_mb"] / base["peak_rss_mb"], 3),
                                    "samples_per_s": round(r["samples_per_s"] / base["samples_per_s"], 3)}
                   for r in runs},
        "load_average": [round(x, 2) for x in os.getloadavg()], "seconds": round(time.monotonic() - started, 1)}))


if __name__ == "__main__":
    main()
