"""Quality on THUCNews: teacher vs students trained alone (alpha=1) and distilled, augmentation off/on.

    nohup .venv/bin/python bench/quality.py --size full > var/bench/quality.log 2>&1 &
    .venv/bin/python bench/quality.py --size tiny      # smoke size (seconds)

Data: every title of --data (default ../shared/datasets/thucnews from the repo root: dev.txt +
test.txt, 20,000 titles, `text<TAB>label`) pooled and shuffled with seed 42, then cut into
train/dev/test (full: 16,000 / 2,000 / 2,000). The teacher is a char-level BERT trained from
scratch on the train cut by distill_core.teacher_training (no pretrained weights can be
downloaded here); every student run goes through distill_core.distiller.run with one shared
teacher cache, so the teacher labels each split once. Rows are written to
var/bench/quality-<size>.json as they finish (a cut-short run keeps what it has); the last
line printed is the one JSON summary.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

SIZES = {
    # split, teacher (layers, hidden, epochs), student epochs, augmentation copies per title
    "tiny": {"split": (200, 50, 50), "teacher": (1, 32, 1), "epochs": 1, "augment_copies": 1,
             "embedding_dim": 16, "t4_epochs": 1},
    "full": {"split": (16000, 2000, 2000), "teacher": (4, 256, 4), "epochs": 8, "augment_copies": 1,
             "embedding_dim": 64, "t4_epochs": 3},
}
# The teacher is the demo's shape (char BERT 4 x 256, ~4.5 M parameters, a quarter of them char
# embeddings); 64-d char-embedding students are >= 10x smaller. T4-tiny (4 x 312) is as large as this
# teacher (a BERT-base teacher would be 7.5x larger): its row shows what matches buy, not compression.
STUDENTS = {
    "textcnn": {"type": "textcnn", "vocab": "char", "options": {"filter_sizes": [2, 3, 4], "num_filters": 128},
                "lr": 3e-3},
    "bilstm": {"type": "bilstm", "vocab": "char", "options": {"hidden_size": 96, "fc_size": 128}, "lr": 3e-3},
    "t4tiny": {"type": "transformer", "vocab": "teacher", "options": {"preset": "T4-tiny"}, "lr": 5e-4},
}
DISTILLED_ALPHA = 0.2  # hard-label weight of a distilled run; 1 - alpha goes to the soft targets
RUNS = [  # (row name, student, alpha, augmentation)
    ("textcnn alone", "textcnn", 1.0, False),
    ("textcnn distilled", "textcnn", DISTILLED_ALPHA, False),
    ("textcnn distilled + augment", "textcnn", DISTILLED_ALPHA, True),
    ("bilstm alone", "bilstm", 1.0, False),
    ("bilstm distilled", "bilstm", DISTILLED_ALPHA, False),
    ("bilstm distilled + augment", "bilstm", DISTILLED_ALPHA, True),
    ("t4tiny alone", "t4tiny", 1.0, False),
    ("t4tiny distilled + hidden matches", "t4tiny", DISTILLED_ALPHA, False),
]
TEMPERATURE = 4.0
# --tune: each distilled row tries these (temperature, alpha) and keeps the one with the best dev accuracy
# (the test split is never looked at to choose); its hard-label twin has no KD settings to tune.
TUNE_GRID = [(2.0, 0.2), (2.0, 0.5), (4.0, 0.2), (4.0, 0.5)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=list(SIZES), default="full")
    parser.add_argument("--data", type=Path, default=common.THUCNEWS,
                        help="folder of text<TAB>label .txt files (class.txt is skipped)")
    parser.add_argument("--runs", help="comma-separated row names to run (default: all)")
    parser.add_argument("--tune", action="store_true",
                        help="pick each distilled row's temperature and alpha from TUNE_GRID by dev accuracy")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    size = SIZES[args.size]
    started = time.monotonic()
    paths = common.thucnews_split(args.data, size["split"])
    layers, hidden, teacher_epochs = size["teacher"]
    teacher = common.ensure_teacher(common.VAR / f"teacher-quality-{args.size}-{layers}x{hidden}", paths["train"],
                                    paths["dev"], layers=layers, hidden=hidden, epochs=teacher_epochs)
    progress(f"teacher ready: {teacher}")
    out_file = common.VAR / f"quality-{args.size}{'-tuned' if args.tune else ''}.json"
    summary = {"bench": "quality", "size": args.size, "split": dict(zip(("train", "dev", "test"), size["split"], strict=True)),
               "split_seed": 42, "data": str(args.data), "teacher": teacher, "temperature": TEMPERATURE,
               "student_epochs": size["epochs"], "rows": []}
    wanted = set(args.runs.split(",")) if args.runs else None
    for name, student, alpha, augment in RUNS:
        if wanted and name not in wanted:
            continue
        grid = TUNE_GRID if args.tune and alpha < 1 else [(TEMPERATURE, alpha)]
        tried = []
        for temperature, grid_alpha in grid:
            results = distil(paths, teacher, student, grid_alpha, augment, size, temperature)
            tried.append(({"temperature": temperature, "alpha": grid_alpha,
                           "dev_accuracy": round(results["best_dev"]["accuracy"], 4),
                           "test_accuracy": round(results["student"]["accuracy"], 4)}, results))
        choice, results = max(tried, key=lambda t: t[0]["dev_accuracy"])  # first best on ties
        if not summary["rows"]:
            summary["rows"].append(teacher_row(results, teacher))
        row = student_row(name, student, choice["alpha"], augment, results)
        row["temperature"] = choice["temperature"]
        if len(tried) > 1:
            row["tuning"] = [t[0] for t in tried]
        summary["rows"].append(row)
        progress(json.dumps(summary["rows"][-1], ensure_ascii=False))
        out_file.write_text(json.dumps(summary, indent=1, ensure_ascii=False))
    summary["checks"] = checks(summary["rows"])
    summary["seconds"] = round(time.monotonic() - started, 1)
    out_file.write_text(json.dumps(summary, indent=1, ensure_ascii=False))
    print(json.dumps(summary, ensure_ascii=False))


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def distil(paths: dict[str, Path], teacher: dict, student: str, alpha: float, augment: bool, size: dict,
           temperature: float = TEMPERATURE) -> dict:
    from distill_core.config import ExperimentConfig
    from distill_core.distiller import run

    s = STUDENTS[student]
    transformer = s["type"] == "transformer"
    config = ExperimentConfig.from_dict({
        "name": f"quality {student} alpha={alpha} augment={augment}", "seed": 42,
        "data": {"train": str(paths["train"]), "dev": str(paths["dev"]), "test": str(paths["test"]),
                 "labels": common.LABELS, "max_length": 32},
        "teacher": {"path": teacher["path"]},
        "student": {"type": s["type"], "vocab": s["vocab"], "options": s["options"],
                    **({} if transformer else {"embedding_dim": size["embedding_dim"]})},
        "kd": {"temperature": temperature, "alpha": alpha, "loss": "kl"},
        "matches": common.hidden_matches(teacher["path"]) if transformer and alpha < 1 else [],
        "augment": {"enabled": augment, "n_iter": size["augment_copies"],
                    "max_examples": size["split"][0] * size["augment_copies"]},
        "train": {"epochs": size["t4_epochs"] if transformer else size["epochs"], "batch_size": 64,
                  "learning_rate": s["lr"], "warmup_ratio": 0.1 if transformer else 0.0, "device": "cpu",
                  "log_every": 50, "checkpoint_every": 10 ** 9},
    })
    return run(config, resume=False, cache_dir=common.VAR / "teacher-cache")


def teacher_row(results: dict, teacher: dict) -> dict:
    t, size = results["teacher"], results["size"]["teacher"]
    return {"model": f"teacher (char BERT {teacher['layers']}x{teacher['hidden']})", "alpha": None, "augment": None,
            "accuracy": round(t["accuracy"], 4), "macro_f1": round(t["macro_f1"], 4),
            "parameters": size["parameters"], "mb": round(size["bytes"] / 1e6, 2),
            "latency_ms_batch_1": size["latency_ms_batch_1"], "latency_ms_batch_32": size["latency_ms_batch_32"]}


def student_row(name: str, student: str, alpha: float, augment: bool, results: dict) -> dict:
    s, size = results["student"], results["size"]
    return {"model": name, "student": student, "alpha": alpha, "augment": augment,
            "accuracy": round(s["accuracy"], 4), "macro_f1": round(s["macro_f1"], 4),
            "parameters": size["student"]["parameters"], "mb": round(size["student"]["bytes"] / 1e6, 2),
            "latency_ms_batch_1": size["student"]["latency_ms_batch_1"],
            "latency_ms_batch_32": size["student"]["latency_ms_batch_32"],
            "compression": round(size["compression"], 2), "train_examples": results["examples"]["train"],
            "seconds": results["seconds"]["total"]}


def checks(rows: list[dict]) -> dict:
    """The two targets: every distilled student beats its alone twin; the best keeps >= 97% at >= 10x."""
    if not rows:
        return {}
    teacher, students = rows[0], rows[1:]
    alone = {r["student"]: r["accuracy"] for r in students if r["alpha"] == 1.0}  # tuning never picks alpha 1
    beats = {r["model"]: r["accuracy"] > alone[r["student"]] for r in students
             if r["alpha"] != 1.0 and r["student"] in alone}
    # the target is about compression: the best of the students with >= 10x fewer parameters
    best = max((r for r in students if r["compression"] >= 10), key=lambda r: r["accuracy"], default=None)
    out = {"distilled_beats_alone": beats}
    if best:
        out["best_student"] = best["model"]
        out["best_keeps_of_teacher"] = round(best["accuracy"] / max(teacher["accuracy"], 1e-9), 4)
        out["best_compression"] = best["compression"]
        out["best_meets_97pct_at_10x"] = out["best_keeps_of_teacher"] >= 0.97 and best["compression"] >= 10
    return out


if __name__ == "__main__":
    main()
