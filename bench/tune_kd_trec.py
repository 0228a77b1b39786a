"""Tune KD on TREC: every student alone vs distilled with the settings tune-KD picks (distill_core/tune.py).

    nohup .venv/bin/python bench/tune_kd_trec.py --students transformer --seeds 3 > var/bench/tune-kd-trec-t.log 2>&1 &
    nohup .venv/bin/python bench/tune_kd_trec.py --students textcnn,bilstm,bigru --seeds 3 > var/bench/tune-kd-trec-c.log 2>&1 &
    .venv/bin/python bench/tune_kd_trec.py --size tiny --seeds 1        # smoke size (seconds)

Same data, teacher, students and training settings as bench/quality_trec.py (its helpers are
imported; the fine-tuned teacher under var/bench/ is reused, never rebuilt here: run quality_trec.py
once first). Per student and seed: the hard-label twin (alpha 1), then a distilled run. At seed 0
the distilled run has `tune.enabled`: trials over the grid (--temperatures x --alphas x KL, each
--steps optimisation steps on the dev split, scored by dev --metric) pick T and alpha, and the full
run continues with the winner, all inside distiller.run. Seeds 1.. reuse seed 0's winner without
tuning (what a recipe in examples/ does); --tune-every-seed tunes at every seed instead. Every
figure is on the 500-question test split, which the trials never see. The last line printed is the
JSON summary (also var/bench/tune-kd-trec-<size>-<students>.json).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402
import quality_trec as qt  # noqa: E402
from quality import progress  # noqa: E402

STEPS = {"transformer": 200, "classic": 300}  # trial budgets: ~1.3 and ~2 epochs of the 4,907 questions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=list(qt.SIZES), default="full")
    parser.add_argument("--data", type=Path, default=qt.TREC)
    parser.add_argument("--students", default="transformer,textcnn,bilstm,bigru")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--temperatures", default="1,2,4")
    parser.add_argument("--alphas", default="0.2,0.5,0.8")
    parser.add_argument("--losses", default="kl")
    parser.add_argument("--metric", default="macro_f1", choices=("accuracy", "macro_f1"))
    parser.add_argument("--steps", type=int, help="trial steps (default: 200 transformer, 300 classic students)")
    parser.add_argument("--tune-every-seed", action="store_true")
    parser.add_argument("--kd", help="T,alpha,loss: use these settings at every seed instead of tuning (e.g. an "
                        "earlier tuning's winner)")
    parser.add_argument("--alone", help="students whose hard-label twin is run here (default: all; 'none' compares "
                        "with the twins of quality_trec.py's table, which ran the same configs and seeds)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("distill_core.tune").setLevel(logging.INFO)
    size = qt.SIZES[args.size]
    started = time.monotonic()
    labels = (args.data / "class.txt").read_text(encoding="utf-8").split()
    paths = split_paths(args.data, labels, size)
    teacher = existing_teacher(args.size, paths, labels, size)
    students = args.students.split(",")
    grid = {"temperatures": [float(t) for t in args.temperatures.split(",")],
            "alphas": [float(a) for a in args.alphas.split(",")], "losses": args.losses.split(","),
            "metric": args.metric}
    out_file = common.VAR / f"tune-kd-trec-{args.size}-{'-'.join(students)}.json"
    summary = {"bench": "tune_kd_trec", "size": args.size, "teacher": teacher, "grid": grid,
               "tune_every_seed": args.tune_every_seed, "students": {}}
    for student in students:
        steps = args.steps or STEPS["transformer" if student == "transformer" else "classic"]
        tune = {**grid, "enabled": True, "steps": steps if args.size == "full" else 10}
        record = summary["students"][student] = {"alone": [], "tuned": [], "tuning": None}
        chosen = None
        if args.kd:
            t, a, loss = args.kd.split(",")
            chosen = {"temperature": float(t), "alpha": float(a), "loss": loss}
        for seed in range(args.seeds):
            if args.alone is None or student in args.alone.split(","):
                record["alone"].append(qt.distil_row(f"{student} alone", student, 1.0, False, "random", "frequency",
                                                     paths, labels, teacher,
                                                     size, seed))
                progress(json.dumps(record["alone"][-1]))
            tuning_now = not args.kd and (seed == 0 or args.tune_every_seed)
            row, tuning = tuned_row(student, paths, labels, teacher, size, seed,
                                    tune if tuning_now else None, chosen)
            if tuning_now:
                chosen = tuning["settings"]
                record["tuning"] = record["tuning"] or tuning
                record.setdefault("choices", []).append({"seed": seed, "explanation": tuning["explanation"]})
                progress(f"{student} seed {seed}: tune KD chose {tuning['explanation']}")
            record["tuned"].append(row)
            progress(json.dumps(row))
            record["gain_points"] = gain(record)
            out_file.write_text(json.dumps(summary, indent=1))  # a cut-short run keeps what it has
    summary["seconds"] = round(time.monotonic() - started, 1)
    out_file.write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary))


def split_paths(data: Path, labels: list[str], size: dict) -> dict[str, Path]:
    """The split quality_trec.py wrote (read only: it may be a link to another checkout); written if missing."""
    n_train = size["train_rows"] or sum(1 for line in open(data / "train.tsv", encoding="utf-8") if line.strip())
    n_test = size["test_rows"] or sum(1 for line in open(data / "test.tsv", encoding="utf-8") if line.strip())
    folder = common.VAR / f"trec-{n_train}-{n_test}-s{qt.SPLIT_SEED}"
    paths = {name: folder / f"{name}.tsv" for name in ("train", "dev", "test")}
    return paths if all(p.is_file() for p in paths.values()) else qt.trec_split(data, labels, size)


def existing_teacher(size_name: str, paths: dict[str, Path], labels: list[str], size: dict) -> dict:
    teacher = qt.ensure_teacher(size_name, paths, labels, size) if size_name == "tiny" else None
    if teacher is None:
        found = sorted(common.VAR.glob("teacher-trec-full-*/bench_teacher.json"))
        if not found:
            raise SystemExit("No fine-tuned TREC teacher under var/bench/: run bench/quality_trec.py --runs none first.")
        teacher = json.loads(found[0].read_text())
    return teacher


def tuned_row(student: str, paths: dict[str, Path], labels: list[str], teacher: dict, size: dict, seed: int,
              tune: dict | None, chosen: dict | None) -> tuple[dict, dict | None]:
    """A distilled run (quality_trec.py's distil_row): tuned (tune given) or with an earlier seed's winner (chosen)."""
    kd = chosen or {"temperature": qt.TEMPERATURE, "alpha": qt.DISTILLED_ALPHA, "loss": "kl"}
    row = qt.distil_row(f"{student} tuned KD", student, kd["alpha"], False, "random", "frequency", paths, labels,
                        teacher, size, seed, temperature=kd["temperature"], loss=kd["loss"], tune=tune)
    tuning = row.pop("tuning")
    row["tuned_here"] = bool(tune)
    if tuning:
        row["tuning_seconds"] = tuning["seconds"]
    return row, tuning


def gain(record: dict) -> dict:
    """Tuned minus alone, in points, over the seeds both have."""
    n = min(len(record["alone"]), len(record["tuned"]))
    if not n:
        return {"seeds": 0, "tuned_mean": round(100 * statistics.mean(r["accuracy"] for r in record["tuned"]), 2),
                "tuned_macro_f1": round(statistics.mean(r["macro_f1"] for r in record["tuned"]), 4)}
    alone = [r["accuracy"] for r in record["alone"][:n]]
    tuned = [r["accuracy"] for r in record["tuned"][:n]]
    return {"seeds": n, "alone_mean": round(100 * statistics.mean(alone), 2),
            "tuned_mean": round(100 * statistics.mean(tuned), 2),
            "points": round(100 * (statistics.mean(tuned) - statistics.mean(alone)), 2),
            "alone_macro_f1": round(statistics.mean(r["macro_f1"] for r in record["alone"][:n]), 4),
            "tuned_macro_f1": round(statistics.mean(r["macro_f1"] for r in record["tuned"][:n]), 4)}


if __name__ == "__main__":
    main()
