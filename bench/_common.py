"""Helpers shared by the bench scripts: paths, the THUCNews split, cached teachers, peak RSS.

Nothing here is part of the product; everything a script builds lives under var/bench/ (git-ignored), or under
$DISTILLERY_BENCH_DIR where that is set (the smoke tests give each run its own, so none reads another's cache).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

VAR = Path(os.environ.get("DISTILLERY_BENCH_DIR") or ROOT / "var" / "bench")
DEMO = ROOT / "webapp" / "experiments" / "demo_data" / "thucnews"
THUCNEWS = ROOT.parent / "shared" / "datasets" / "thucnews"  # ../shared/datasets/thucnews from the repo root
LABELS = (DEMO / "labels.txt").read_text(encoding="utf-8").split()


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB (ru_maxrss is KiB on Linux)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def read_tsv(path: Path) -> list[tuple[str, int]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            text, label = line.rsplit("\t", 1)
            rows.append((text, int(label)))
    return rows


def write_tsv(path: Path, rows: list[tuple[str, int]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{text}\t{label}\n" for text, label in rows), encoding="utf-8")


def thucnews_split(data_dir: Path, sizes: tuple[int, int, int], seed: int = 42) -> dict[str, Path]:
    """Pool every `text<TAB>label` file of `data_dir`, shuffle with `seed`, cut train/dev/test of `sizes`.

    The files are written once under var/bench/thucnews-<sizes>-<seed>-<hash of data_dir>/ and reused.
    """
    where = hashlib.sha1(str(Path(data_dir).resolve()).encode()).hexdigest()[:8]  # another --data, another split
    out = VAR / f"thucnews-{'-'.join(map(str, sizes))}-s{seed}-{where}"
    paths = {name: out / f"{name}.tsv" for name in ("train", "dev", "test")}
    if all(p.is_file() for p in paths.values()):
        return paths
    files = sorted(p for p in data_dir.glob("*.txt") if p.name != "class.txt")
    if not files:
        raise SystemExit(f"No THUCNews files in {data_dir} (expected text<TAB>label .txt files); see --data.")
    rows = [row for p in files for row in read_tsv(p)]
    if sum(sizes) > len(rows):
        raise SystemExit(f"{data_dir} has {len(rows)} titles; the split {sizes} needs {sum(sizes)}.")
    random.Random(seed).shuffle(rows)
    start = 0
    for path, n in zip(paths.values(), sizes, strict=True):
        write_tsv(path, rows[start: start + n])
        start += n
    return paths


def ensure_teacher(out_dir: Path, train: Path, dev: Path, *, layers: int, hidden: int, epochs: int,
                   max_length: int = 32) -> dict:
    """Train a char-level BERT teacher with distill_core.teacher_training once; reuse it afterwards.

    Returns {"path", "dev_accuracy", "train_seconds", "cached"}.
    """
    from distill_core.teacher_training import train_teacher

    info_file = out_dir / "bench_teacher.json"
    if info_file.is_file() and (out_dir / "config.json").is_file():
        return {**json.loads(info_file.read_text()), "cached": True}
    started = time.monotonic()
    accuracy = train_teacher(train, dev, LABELS, out_dir, hidden_size=hidden, num_layers=layers,
                             heads=max(1, hidden // 64), intermediate=hidden * 4, max_length=max_length,
                             epochs=epochs, batch_size=64, lr=1e-3)
    info = {"path": str(out_dir), "dev_accuracy": round(accuracy, 4),
            "train_seconds": round(time.monotonic() - started, 1), "layers": layers, "hidden": hidden,
            "epochs": epochs}
    info_file.write_text(json.dumps(info))
    return {**info, "cached": False}


def hidden_matches(teacher_path: str) -> list[dict]:
    """hidden_mse on the embeddings and every layer (T4-tiny: 4 x 312 -> the teacher's L x H)."""
    from transformers import AutoConfig

    t = AutoConfig.from_pretrained(teacher_path)
    layers = min(4, t.num_hidden_layers)
    return [{"layer_T": round(i * t.num_hidden_layers / layers), "layer_S": i, "feature": "hidden",
             "loss": "hidden_mse", "weight": 1, "proj": ["linear", 312, t.hidden_size]} for i in range(layers + 1)]
