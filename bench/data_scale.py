"""Peak RSS and training samples/s of a TextCNN run as the train split grows (data larger than memory).

    python bench/data_scale.py                                  # 100k, 1M and 5M synthetic rows
    python bench/data_scale.py --rows 20000 200000 --steps 100  # a test-sized run
    python bench/data_scale.py --rows 100000 1000000 --augment  # augmented runs (copies streamed too)

Each size runs `distill_core.distiller.run` in its own subprocess (so each peak is its own): a
synthetic TSV train split of N rows (4-24 words from 5,000 made-up lowercase words; the label is
whether the text holds one of 500 "positive" words), fixed 2,000-row dev and test files, a word
vocabulary TextCNN student, batch 64, one epoch capped at `--steps` optimisation steps (the steps
are drawn from a permutation of all N rows, so they touch the whole split), a checkpoint every 100
steps into the output directory, and the cheapest teacher that still runs a real forward pass:
a random 1-layer, 16-wide BERT written with save_pretrained whose word-piece vocabulary holds the
5,000 words (see teacher()).
The teacher pass over all N rows and tokenisation are part of the run (and of its peak RSS);
samples/s counts only the training loop, from the "start" event to the last step. The data,
teacher and token/teacher caches live under var/bench/data_scale/ (caches are removed after each
size). With `--augment` each run also makes one augmented copy per train row (AUGMENT: n_iter 1,
no cap on the copies, so they grow with N), which the teacher labels and training draws from.
Prints one JSON line; the targets: peak RSS at the largest size <= 1.2x the smallest, and
samples/s within 10 %.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import _common as common
import numpy as np

WORDS, POSITIVE = 5000, 500
DEV_TEST_ROWS = 2000
AUGMENT = {"enabled": True, "n_iter": 1, "max_examples": 100_000_000}


def words(seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    out, seen = [], set()
    while len(out) < WORDS:
        word = "".join(rng.choice(letters, int(rng.integers(3, 9))))
        if word not in seen:
            seen.add(word)
            out.append(word)
    return out


def write_rows(path: Path, rows: int, seed: int, chunk: int = 100_000) -> None:
    """`rows` lines of `text<TAB>label`, written a chunk at a time (never all in memory)."""
    vocab = np.array(words())
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            lengths = rng.integers(4, 25, n)
            ids = rng.zipf(1.3, int(lengths.sum())) % WORDS
            lines, at = [], 0
            for length in lengths:
                row = ids[at: at + length]
                at += length
                lines.append(f"{' '.join(vocab[row])}\t{int((row < POSITIVE).any())}\n")
            fh.write("".join(lines))


def dataset(root: Path, rows: int) -> dict[str, Path]:
    paths = {"train": root / f"train-{rows}.tsv", "dev": root / "dev.tsv", "test": root / "test.tsv"}
    for name, path in paths.items():
        if not path.is_file():
            tmp = path.with_suffix(".tmp")
            write_rows(tmp, rows if name == "train" else DEV_TEST_ROWS, seed={"train": 1, "dev": 2, "test": 3}[name])
            tmp.rename(path)
    return paths


def teacher(root: Path) -> Path:
    """A random 1-layer, 16-wide BERT whose vocabulary holds every synthetic word (one piece a word: a
    char-piece vocabulary makes WordPiece, not the model, the cost of the teacher pass)."""
    import torch
    from transformers import BertForSequenceClassification

    from distill_core.teacher_training import bert_config, char_pieces, save_char_tokenizer

    path = root / "teacher-1x16-words"
    if not (path / "config.json").is_file():
        tokenizer = save_char_tokenizer([*char_pieces([" ".join(words())]), *words()], path)
        torch.manual_seed(0)
        BertForSequenceClassification(bert_config(len(tokenizer), ["0", "1"], 16, 1, 2, 32,
                                                  max_position_embeddings=128)).save_pretrained(path)
    return path


class Timing:
    """A sink that notes when training starts, the last step and each phase's first event."""

    def __init__(self) -> None:
        self.start: float | None = None
        self.start_cpu = 0.0
        self.last_step = (0, 0.0, 0.0)  # (step, wall clock, process CPU time)
        self.phases: dict[str, float] = {}

    def emit(self, kind: str, payload: dict) -> None:
        now = time.monotonic()
        if kind == "start":
            self.start, self.start_cpu = now, time.process_time()
        elif kind == "step":
            self.last_step = (payload["step"], now, time.process_time())
        elif kind == "phase":
            self.phases.setdefault(payload["name"], now)


def child(rows: int, root: Path, steps: int, batch_size: int, augment: bool) -> dict:
    from distill_core.config import ExperimentConfig
    from distill_core.distiller import run

    paths = dataset(root, rows)
    out = root / f"run-{rows}"
    cache = root / f"cache-{rows}"
    for stale in (out, cache):
        shutil.rmtree(stale, ignore_errors=True)
    config = ExperimentConfig.from_dict({
        "name": f"scale-{rows}", "seed": 0,
        "data": {"train": str(paths["train"]), "dev": str(paths["dev"]), "test": str(paths["test"]),
                 "labels": ["0", "1"], "max_length": 32},
        "teacher": {"path": str(teacher(root))},
        "student": {"type": "textcnn", "vocab": "word", "embedding_dim": 64, "options": {"num_filters": 64}},
        "kd": {"temperature": 2.0, "alpha": 0.5},
        "train": {"epochs": 1, "batch_size": batch_size, "max_steps": steps, "learning_rate": 0.001,
                  "log_every": 1, "checkpoint_every": 100, "device": "cpu"},
        "augment": AUGMENT if augment else {"enabled": False},
        "output_dir": str(out),
    })
    timing = Timing()
    started = time.monotonic()
    results = run(config, sink=timing, cache_dir=cache)
    step, last, last_cpu = timing.last_step
    marks = sorted(timing.phases.items(), key=lambda kv: kv[1])
    phase_seconds = {name: round(end - begin, 1) for (name, begin), (_, end) in itertools.pairwise(marks)}
    shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    return {"rows": rows, "peak_rss_mb": common.peak_rss_mb(), "steps": step,
            "samples_per_s": round(step * batch_size / (last - timing.start), 1),
            # per CPU-second of this (one-thread) process: what other work on the machine distorts least
            "samples_per_cpu_s": round(step * batch_size / (last_cpu - timing.start_cpu), 1),
            "train_examples": results["examples"]["train"], "accuracy": results["student"]["accuracy"],
            "seconds_before_training": round(timing.start - started, 1), "phase_seconds": phase_seconds, "seconds_total": round(time.monotonic()
                                                                                                 - started, 1)}


def measure(rows: list[int], root: Path, steps: int, batch_size: int, threads: int, augment: bool) -> dict:
    """Run every size in its own subprocess; the JSON of each and the ratios against the smallest."""
    runs = []
    for n in rows:
        dataset(root, n)  # written by this process: the child's peak is the run's alone
        teacher(root)
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
        proc = subprocess.run([sys.executable, __file__, "--child", str(n), "--root", str(root), "--steps", str(steps),
                               "--batch-size", str(batch_size), "--threads", str(threads)]
                              + (["--augment"] if augment else []),
                              capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise SystemExit(f"The {n}-row run failed:\n{proc.stderr[-4000:]}")
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(f"# {json.dumps(runs[-1])}", file=sys.stderr, flush=True)
    base = runs[0]
    return {"runs": runs, "ratios": {str(r["rows"]): {"peak_rss": round(r["peak_rss_mb"] / base["peak_rss_mb"], 3),
                                                       "samples_per_s": round(r["samples_per_s"] / base["samples_per_s"],
                                                                              3),
                                                       "samples_per_cpu_s": round(r["samples_per_cpu_s"]
                                                                                  / base["samples_per_cpu_s"], 3)}
                       for r in runs},
            "steps": steps, "batch_size": batch_size, "threads": threads,
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000, 5_000_000])
    parser.add_argument("--steps", type=int, default=600, help="training steps per size (samples/s window)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--root", type=Path, default=common.VAR / "data_scale")
    parser.add_argument("--augment", action="store_true", help="one augmented copy per train row (AUGMENT)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import torch

        torch.set_num_threads(args.threads)
        print(json.dumps(child(args.child, args.root, args.steps, args.batch_size, args.augment)))
        return
    started = time.monotonic()
    result = measure(args.rows, args.root, args.steps, args.batch_size, args.threads, args.augment)
    result["seconds"] = round(time.monotonic() - started, 1)
    result["augment"] = args.augment
    result["max_rss_kb_self"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(result))


if __name__ == "__main__":
    main()
