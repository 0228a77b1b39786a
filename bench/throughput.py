"""Distillation throughput on the CPU: Distillery vs TextBrewer 0.2.x vs student-only training.

    .venv/bin/python bench/throughput.py --size full     # 6,000 demo titles, 5 epochs, batch 64, length 32
    .venv/bin/python bench/throughput.py --size tiny     # smoke size: random tiny teacher, 64 titles, 2 epochs
    .venv/bin/python bench/throughput.py --data trec --max-length 128 --setups textcnn   # mixed-length questions

Same teacher (a char-level BERT with seeded random weights, written once under var/bench/: speed
does not depend on what a teacher learnt, and training one costs more CPU than this machine can
spare), same student, data, batch size, sequence length, epochs and optimiser (AdamW, constant
learning rate, gradient clipping 1.0) for every contender. The teacher is 4 x 256 (the demo's) for
textcnn and, by default, BERT-base's shape (12 x 768, intermediate 3072) for the T4-tiny setups, the
teacher T4-tiny is meant to compress (a 4 x 256 teacher is smaller than that student; see
--transformer-teacher):

- student_only: the student alone on hard labels in a bare PyTorch loop (the limit);
- distillery: distill_core.distiller.run (teacher logits computed once, before epoch 1; its
  per-epoch dev evaluation is moved after the last, untimed step, as the others evaluate nothing);
  train.bucket_by_length at its default, auto (16-token width classes where they cut the padded
  cells >= 1.5x); distillery_unbucketed / distillery_bucketed: the same with `off` / `on`;
  distillery_bf16: the default with the teacher pass in bfloat16 (teacher.precision, an opt-in);
- textbrewer: TextBrewer's BasicDistiller (GeneralDistiller with intermediate matches), which
  runs the teacher on every batch; textbrewer_cached: BasicDistiller with is_caching_logits=True.

Setups: textcnn (char vocabulary), t4tiny (T4-tiny transformer, the teacher's word pieces) and
t4tiny_matches (T4-tiny plus hidden_mse matches on every layer, so the teacher runs live).
Each contender runs in its own subprocess (peak RSS from resource.getrusage); contenders of a
setup run back to back in one invocation, so compare them as ratios. Every contender's student is
scored on the test split after its last (timed) step. Data: --data demo (the shipped THUCNews
titles, 6 to 31 characters) or trec (../shared/datasets/trec: coarse labels, 13 to 196 characters;
dev is drawn from train, test is its 500 questions). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import random
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402
from throughput_contenders import SETUPS, run_contender  # noqa: E402

SIZES = {  # training titles (TextCNN; the transformer setups), epochs, batch size
    "tiny": {"examples": 32, "transformer_examples": 32, "epochs": 2, "batch_size": 16},
    "full": {"examples": 6000, "transformer_examples": 1000, "epochs": 5, "batch_size": 64},
}


def eval_examples(train_examples: int) -> int:
    """Dev and test titles each: a tenth of train (an 80/10/10 split), 16 to 200."""
    return min(200, max(16, train_examples // 10))
TEACHERS = {  # (layers, hidden, heads); intermediate = 4 x hidden
    "tiny": (2, 32, 2),
    "demo": (4, 256, 4),
    "base": (12, 768, 12),
}
CONTENDERS = ["student_only", "distillery", "distillery_unbucketed", "distillery_bucketed", "distillery_bf16",
              "textbrewer", "textbrewer_cached"]
TREC = common.ROOT.parent / "shared" / "datasets" / "trec"  # ../shared/datasets/trec from the repo root
TREC_LABELS = ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]


# --- the parent: prepare once, run every contender in a subprocess ------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=list(SIZES), default="full")
    parser.add_argument("--examples", type=int, help="training titles of the textcnn setup (default by --size)")
    parser.add_argument("--transformer-examples", type=int, help="training titles of the T4-tiny setups")
    parser.add_argument("--epochs", type=int, help="default by --size")
    parser.add_argument("--batch-size", type=int, help="default by --size")
    parser.add_argument("--max-length", type=int, default=32)
    parser.add_argument("--data", choices=["demo", "trec"], default="demo")
    parser.add_argument("--trec-dir", type=Path, default=TREC, help="TREC's train.tsv and test.tsv (--data trec)")
    parser.add_argument("--threads", type=int, help="torch threads of every contender (default: torch's own); 1 on "
                        "a shared machine, where two threads spin-wait on each other when the scheduler parks one")
    parser.add_argument("--eval-examples", type=int, help="dev and test examples each (default: a tenth of train, "
                        "16 to 200; trec's test is always its 500 questions)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (the GPU section of docs/BENCHMARKS.md)")
    parser.add_argument("--amp", choices=["off", "bf16", "fp16"], default="off", help="Distillery's train.amp")
    parser.add_argument("--setups", default=",".join(SETUPS), help=f"comma-separated: {', '.join(SETUPS)}")
    parser.add_argument("--transformer-teacher", choices=["base", "demo"], default="base",
                        help="teacher of the T4-tiny setups: base = 12 x 768 (BERT-base's shape), demo = 4 x 256")
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--seed", type=int, default=42, help="every contender's seed (student init, batch order)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run the contenders this many times, reversing their order every other time; report each "
                             "one's fastest run (the least disturbed by other load)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: run one contender from a JSON spec
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run_contender(json.loads(args.worker))))
        return

    size = dict(SIZES[args.size])
    for key in ("examples", "transformer_examples", "epochs", "batch_size"):
        if getattr(args, key) is not None:
            size[key] = getattr(args, key)
    labels = TREC_LABELS if args.data == "trec" else common.LABELS
    trec = args.trec_dir if args.data == "trec" else None
    teachers = {False: prepare_teacher("tiny" if args.size == "tiny" else "demo", trec, labels),
                True: prepare_teacher("tiny" if args.size == "tiny" else args.transformer_teacher, trec, labels)}
    out = {"bench": "throughput", "seed": args.seed, "size": args.size, "data": args.data, "device": args.device, "amp": args.amp,
           "examples": size["examples"],
           "transformer_examples": size["transformer_examples"], "epochs": size["epochs"], "batch_size": size["batch_size"], "max_length": args.max_length,
           "teachers": {"textcnn": teachers[False], "t4tiny": teachers[True]}, "setups": {}}
    for setup in args.setups.split(","):
        contenders = [c for c in args.contenders.split(",") if not (c == "textbrewer_cached" and SETUPS[setup]["matches"])]
        if "textbrewer" in ",".join(contenders) and importlib.util.find_spec("textbrewer") is None:
            contenders = [c for c in contenders if not c.startswith("textbrewer")]  # bench/requirements.txt
            out["textbrewer"] = "not installed: pip install -r bench/requirements.txt"
        examples = size["examples"] if setup == "textcnn" else size["transformer_examples"]
        data = prepare_data(trec, examples, args.eval_examples or eval_examples(examples))
        runs: dict[str, list[dict]] = {c: [] for c in contenders}
        teacher = teachers[SETUPS[setup]["transformer"]]
        for r in range(args.repeat):
            for contender in (contenders if r % 2 == 0 else contenders[::-1]):
                spec = {"contender": contender, "setup": setup, "data": data, "teacher": teacher["path"],
                        "max_length": args.max_length, "device": args.device, "amp": args.amp, **size,
                        "examples": examples, "labels": labels, "threads": args.threads, "seed": args.seed}
                print(f"[{time.strftime('%H:%M:%S')}] {setup}: {contender}", file=sys.stderr, flush=True)
                proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True,
                                      text=True, cwd=common.ROOT)
                lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
                if proc.returncode != 0 or not lines:
                    runs[contender].append({"error": (proc.stderr or proc.stdout).strip().splitlines()[-3:]})
                else:
                    runs[contender].append(json.loads(lines[-1]))
        results = {c: fastest_run(rs) for c, rs in runs.items()}
        out["setups"][setup] = {"examples": examples, "teacher": teacher["kind"], "contenders": results,
                                "ratios": ratios(results)}
    print(json.dumps(out))


def fastest_run(runs: list[dict]) -> dict:
    """The run with the best whole-run samples/s (an error if any run failed); all runs' figures alongside."""
    failed = [r for r in runs if "error" in r]
    if failed:
        return failed[0]
    ranked = sorted(runs, key=lambda r: r["samples_per_s_all"])
    best = dict(ranked[-1])
    if len(runs) > 1:
        best["all_runs_samples_per_s_all"] = [r["samples_per_s_all"] for r in runs]
        best["all_runs_samples_per_cpu_s_all"] = [r["samples_per_cpu_s_all"] for r in runs]
        best["all_runs_test_accuracy"] = [r.get("test_accuracy") for r in runs]
    return best


def ratios(results: dict[str, dict]) -> dict[str, float]:
    """Distillery's samples/s over the others' (whole run, and epochs 2..N against the student-only limit)."""
    def get(name: str, key: str) -> float | None:
        return results.get(name, {}).get(key)

    out = {}
    d_all, d_rest = get("distillery", "samples_per_s_all"), get("distillery", "samples_per_s_epochs_2_n")
    d_cpu = get("distillery", "samples_per_cpu_s_all")
    for other in ("distillery_unbucketed", "textbrewer", "textbrewer_cached"):
        if d_cpu and get(other, "samples_per_cpu_s_all"):
            out[f"distillery_vs_{other}_all_epochs_per_cpu_s"] = round(d_cpu / get(other, "samples_per_cpu_s_all"), 2)
    for variant in ("distillery_bucketed", "distillery_bf16"):
        if get(variant, "samples_per_cpu_s_all") and get("textbrewer_cached", "samples_per_cpu_s_all"):
            out[f"{variant}_vs_textbrewer_cached_all_epochs_per_cpu_s"] = round(
                get(variant, "samples_per_cpu_s_all") / get("textbrewer_cached", "samples_per_cpu_s_all"), 2)
    for other in ("distillery_unbucketed", "textbrewer", "textbrewer_cached"):
        if d_all and get(other, "samples_per_s_all"):
            out[f"distillery_vs_{other}_all_epochs"] = round(d_all / get(other, "samples_per_s_all"), 2)
    if d_rest and get("student_only", "samples_per_s_epochs_2_n"):
        out["distillery_vs_student_only_epochs_2_n"] = round(d_rest / get("student_only", "samples_per_s_epochs_2_n"), 3)
    if d_all and get("student_only", "samples_per_s_all"):
        out["distillery_vs_student_only_all_epochs"] = round(d_all / get("student_only", "samples_per_s_all"), 3)
    return out


def prepare_data(trec: Path | None, examples: int, eval_examples: int) -> dict[str, str]:
    """The first `examples` training rows, and small dev/test files (evaluation is not what we time).

    `trec`: TREC's folder (its questions, dev drawn from train with seed 42); None: the demo titles.
    """
    out = common.VAR / f"throughput-data-{trec_tag(trec)}{examples}-{eval_examples}"
    if trec is not None:
        train = read_trec(trec / "train.tsv")
        random.Random(42).shuffle(train)
        rows = {"train": train[eval_examples:][:examples], "dev": train[:eval_examples],
                "test": read_trec(trec / "test.tsv")}
    else:
        rows = {"train": common.read_tsv(common.DEMO / "train.tsv")[:examples],
                "dev": common.read_tsv(common.DEMO / "dev.tsv")[:eval_examples],
                "test": common.read_tsv(common.DEMO / "test.tsv")[:eval_examples]}
    paths = {}
    for name, split in rows.items():
        paths[name] = str(out / f"{name}.tsv")
        if not Path(paths[name]).is_file():
            common.write_tsv(Path(paths[name]), split)
    return paths


def trec_tag(trec: Path | None) -> str:
    """'' for the demo titles, else 'trec-<hash of the folder>-': another --trec-dir, other cached files."""
    return "" if trec is None else f"trec-{hashlib.sha1(str(trec.resolve()).encode()).hexdigest()[:8]}-"


def read_trec(path: Path) -> list[tuple[str, int]]:
    """TREC's `question<TAB>coarse<TAB>fine` rows as (question, coarse label index)."""
    rows = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(question, TREC_LABELS.index(coarse)) for question, coarse, *_ in rows]


def prepare_teacher(shape: str, trec: Path | None = None, labels: list[str] = common.LABELS) -> dict:
    """A char-level BERT teacher of TEACHERS[shape] with seeded random weights (what it learnt does not matter)."""
    from distill_core.testing import make_tiny_teacher

    layers, hidden, heads = TEACHERS[shape]
    path = common.VAR / f"teacher-random-{trec_tag(trec)}{layers}x{hidden}"
    if not (path / "config.json").is_file():
        rows = common.read_tsv(common.DEMO / "train.tsv") if trec is None else read_trec(trec / "train.tsv")
        make_tiny_teacher(path, labels, "".join(t for t, _ in rows), layers=layers, hidden=hidden, heads=heads,
                          intermediate=hidden * 4)
    return {"path": str(path), "kind": f"char BERT {layers}x{hidden}, seeded random weights"}


if __name__ == "__main__":
    main()
