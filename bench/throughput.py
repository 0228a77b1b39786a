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
  train.bucket_by_length left at its default, auto (batches of similar length when random batches
  would be 40 %+ padding); distillery_unbucketed: the same with plain random batches (off);
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

SIZES = {  # training titles (TextCNN; the transformer setups), epochs, batch size
    "tiny": {"examples": 32, "transformer_examples": 32, "epochs": 2, "batch_size": 16},
    "full": {"examples": 6000, "transformer_examples": 1000, "epochs": 5, "batch_size": 64},
}


def eval_examples(train_examples: int) -> int:
    """Dev and test titles each: a tenth of train (an 80/10/10 split), 16 to 200."""
    return min(200, max(16, train_examples // 10))
SETUPS = {
    "textcnn": {"type": "textcnn", "vocab": "char", "options": {"filter_sizes": [2, 3, 4], "num_filters": 128},
                "lr": 1e-3, "matches": False, "transformer": False},
    "t4tiny": {"type": "transformer", "vocab": "teacher", "options": {"preset": "T4-tiny"}, "lr": 1e-4,
               "matches": False, "transformer": True},
    "t4tiny_matches": {"type": "transformer", "vocab": "teacher", "options": {"preset": "T4-tiny"}, "lr": 1e-4,
                       "matches": True, "transformer": True},
}
TEACHERS = {  # (layers, hidden, heads); intermediate = 4 x hidden
    "tiny": (2, 32, 2),
    "demo": (4, 256, 4),
    "base": (12, 768, 12),
}
CONTENDERS = ["student_only", "distillery", "distillery_unbucketed", "textbrewer", "textbrewer_cached"]
TREC = common.ROOT.parent / "shared" / "datasets" / "trec"  # ../shared/datasets/trec from the repo root
TREC_LABELS = ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]
TEMPERATURE, ALPHA = 2.0, 0.8


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
    out = {"bench": "throughput", "size": args.size, "data": args.data, "device": args.device, "amp": args.amp,
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
                        "examples": examples, "labels": labels, "threads": args.threads}
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


# --- one contender (in its own process) ---------------------------------------------------
def stamp() -> tuple[float, float]:
    """(wall clock, this process's CPU time) in seconds."""
    return time.perf_counter(), time.process_time()


def run_contender(spec: dict) -> dict:
    import torch
    from transformers import BertForSequenceClassification, BertTokenizer  # noqa: F401  imports are not timed

    import distill_core.distiller  # noqa: F401

    if spec["contender"].startswith("textbrewer"):
        import textbrewer  # noqa: F401
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    started = stamp()  # epoch 1 includes reading and encoding the data and loading the teacher
    runner = {"student_only": run_student_only, "distillery": run_distillery, "distillery_unbucketed": run_distillery,
              "textbrewer": run_textbrewer, "textbrewer_cached": run_textbrewer}[spec["contender"]]
    extra: dict = {}
    epoch_ends = runner(spec, extra)  # stamp() at the end of each epoch
    marks = [started, *epoch_ends]
    epochs = [b[0] - a[0] for a, b in zip(marks, marks[1:], strict=False)]
    cpu = [b[1] - a[1] for a, b in zip(marks, marks[1:], strict=False)]
    n = spec["examples"]
    rest = epochs[1:]
    return {
        "epoch_seconds": [round(e, 2) for e in epochs],
        "samples_per_s_epoch_1": round(n / epochs[0], 1),
        "samples_per_s_epochs_2_n": round(n * len(rest) / sum(rest), 1) if rest else None,
        "samples_per_s_all": round(n * len(epochs) / sum(epochs), 1),
        # per CPU-second of this process: what a loaded machine distorts least (with --threads 1)
        "epoch_cpu_seconds": [round(c, 2) for c in cpu],
        "samples_per_cpu_s_all": round(n * len(cpu) / sum(cpu), 1),
        "samples_per_cpu_s_epochs_2_n": round(n * len(cpu[1:]) / sum(cpu[1:]), 1) if cpu[1:] else None,
        "wall_seconds": round(time.perf_counter() - started[0], 2),
        "peak_rss_mb": common.peak_rss_mb(),
        **extra,
    }


def experiment_config(spec: dict, alpha: float = ALPHA) -> dict:
    setup = SETUPS[spec["setup"]]
    config = {
        "name": f"throughput {spec['setup']}", "seed": 42,
        "data": {"train": spec["data"]["train"], "dev": spec["data"]["dev"], "test": spec["data"]["test"],
                 "labels": spec["labels"], "max_length": spec["max_length"]},
        "teacher": {"path": spec["teacher"]},
        "student": {"type": setup["type"], "vocab": setup["vocab"], "embedding_dim": 128,
                    "options": setup["options"]},
        "kd": {"temperature": TEMPERATURE, "alpha": alpha, "loss": "kl"},
        "train": {"epochs": spec["epochs"], "batch_size": spec["batch_size"], "learning_rate": setup["lr"],
                  "lr_schedule": "constant", "device": spec.get("device", "cpu"), "amp": spec.get("amp", "off"),
                  "log_every": 1, "checkpoint_every": 10 ** 9,
                  # distillery: the default (auto); distillery_unbucketed: plain random batches
                  "bucket_by_length": "off" if spec["contender"] == "distillery_unbucketed" else "auto",
                  # one dev evaluation, after the last step (untimed): the others evaluate nothing either
                  "eval_every": 10 ** 9},
    }
    if setup["matches"]:
        config["matches"] = common.hidden_matches(spec["teacher"])
    return config


class EpochClock:
    """A sink that notes when the last step of each epoch ended."""

    def __init__(self) -> None:
        self.last_step: dict[int, tuple[float, float]] = {}

    def emit(self, kind: str, payload: dict) -> None:
        if kind == "step":
            self.last_step[payload["epoch"]] = stamp()


def run_distillery(spec: dict, extra: dict) -> list[tuple[float, float]]:
    from distill_core.config import ExperimentConfig
    from distill_core.distiller import run

    clock = EpochClock()
    results = run(ExperimentConfig.from_dict(experiment_config(spec)), sink=clock, resume=False, cache_dir=None)
    # building the teacher's logits for every split: what a teacher-cache entry costs to make
    extra["teacher_inference_seconds"] = results["seconds"]["teacher_inference"]
    extra["test_accuracy"] = round(results["student"]["accuracy"], 4)
    return [clock.last_step[e] for e in sorted(clock.last_step)]


def encoded_train(spec: dict):
    """(ids, lengths, labels, encoder, teacher, tokenizer) exactly as distill_core encodes the train split."""
    from distill_core.config import ExperimentConfig
    from distill_core.distiller import build_encoder, load_splits
    from distill_core.teachers import load_teacher

    config = ExperimentConfig.from_dict(experiment_config(spec))
    train = load_splits(config)["train"]
    teacher, tokenizer = load_teacher(spec["teacher"], "cpu", spec["labels"])
    encoder = build_encoder(config, train, tokenizer)
    ids, lengths = encoder.encode(train.texts, None, spec["max_length"])
    import torch

    return train, ids, lengths, torch.tensor(train.labels), encoder, teacher, tokenizer


def build(spec: dict, vocab_size: int):
    from distill_core.students import build_student

    setup = SETUPS[spec["setup"]]
    return build_student(setup["type"], vocab_size, len(spec["labels"]), 128, setup["options"])


def test_accuracy(spec: dict, student, encoder) -> float:
    """The student's accuracy on the test split, encoded as distill_core encodes it (after the timed epochs)."""
    import torch

    from distill_core.config import ExperimentConfig
    from distill_core.distiller import Encoded, load_splits, predict_labels

    test = load_splits(ExperimentConfig.from_dict(experiment_config(spec)))["test"]
    ids, lengths = encoder.encode(test.texts, None, spec["max_length"])
    y = torch.tensor(test.labels)
    with torch.no_grad():
        predictions = predict_labels(student, Encoded(ids, lengths, y, None), torch.device(spec.get("device", "cpu")),
                                     spec["batch_size"])
    return round(float((predictions == y).float().mean()), 4)


def run_student_only(spec: dict, extra: dict) -> list[tuple[float, float]]:
    import torch
    import torch.nn.functional as F

    _, ids, lengths, y, encoder, _, _ = encoded_train(spec)
    device = torch.device(spec.get("device", "cpu"))
    student = build(spec, encoder.vocab_size).to(device)
    optimizer = torch.optim.AdamW(student.parameters(), lr=SETUPS[spec["setup"]]["lr"])
    generator = torch.Generator().manual_seed(42)
    ends = []
    student.train()
    for _ in range(spec["epochs"]):
        order = torch.randperm(len(y), generator=generator)
        for start in range(0, len(y), spec["batch_size"]):
            index = order[start: start + spec["batch_size"]]
            length = lengths[index]
            batch = ids[index, : int(length.max())].to(device)
            loss = F.cross_entropy(student(batch, length.to(device)), y[index].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
            optimizer.step()
            float(loss)
        ends.append(stamp())
    extra["test_accuracy"] = test_accuracy(spec, student, encoder)
    return ends


def run_textbrewer(spec: dict, extra: dict) -> list[tuple[float, float]]:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    from textbrewer import BasicDistiller, DistillationConfig, GeneralDistiller, TrainingConfig

    from distill_core.student_base import length_mask

    train, ids, lengths, y, encoder, teacher, tokenizer = encoded_train(spec)
    setup = SETUPS[spec["setup"]]
    enc = tokenizer(train.texts, padding=True, truncation=True, max_length=spec["max_length"], return_tensors="pt")
    t_ids, t_mask = enc["input_ids"], enc["attention_mask"]
    with_features = setup["matches"]

    class Teacher(nn.Module):
        """The HF teacher; accepts TextBrewer's {'teacher', 'student'} batch too (its logits cache passes it)."""

        def __init__(self) -> None:
            super().__init__()
            self.bert = teacher

        def forward(self, input_ids=None, attention_mask=None, teacher=None, student=None):
            if teacher is not None:
                input_ids, attention_mask = teacher["input_ids"], teacher["attention_mask"]
            return self.bert(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=with_features)

    class Student(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = build(spec, encoder.vocab_size)

        def forward(self, input_ids, lengths, labels):
            if with_features:
                out = self.net.features(input_ids, lengths)
                return out.logits, out.hidden_states, F.cross_entropy(out.logits, labels)
            logits = self.net(input_ids, lengths)
            return logits, None, F.cross_entropy(logits, labels)

    def adaptor_t(batch, out):
        batch = batch.get("teacher", batch)
        return {"logits": out.logits, "hidden": out.hidden_states or [], "inputs_mask": batch["attention_mask"]}

    def adaptor_s(batch, out):
        logits, hidden, loss = out
        mask = length_mask(batch["lengths"], batch["input_ids"].size(1))
        return {"logits": logits, "hidden": hidden or [], "losses": loss, "inputs_mask": mask}

    def collate(index: list[int]) -> dict:
        index = torch.tensor(index)
        s_len, t_len = lengths[index], t_mask[index].sum(dim=1)
        return {"teacher": {"input_ids": t_ids[index, : int(t_len.max())],
                            "attention_mask": t_mask[index, : int(t_len.max())]},
                "student": {"input_ids": ids[index, : int(s_len.max())], "lengths": s_len, "labels": y[index]}}

    loader = torch.utils.data.DataLoader(list(range(len(y))), batch_size=spec["batch_size"], shuffle=True,
                                         collate_fn=collate, generator=torch.Generator().manual_seed(42))
    student = Student()
    matches = []
    if with_features:
        matches = common.hidden_matches(spec["teacher"])
    d_config = DistillationConfig(temperature=TEMPERATURE, hard_label_weight=ALPHA, kd_loss_weight=1 - ALPHA,
                                  kd_loss_type="ce", intermediate_matches=matches,
                                  is_caching_logits=spec["contender"] == "textbrewer_cached")
    t_config = TrainingConfig(device=spec.get("device", "cpu"), output_dir=str(common.VAR / f"textbrewer-out-{spec['setup']}"))
    distiller_cls = GeneralDistiller if with_features else BasicDistiller
    device = torch.device(spec.get("device", "cpu"))
    distiller = distiller_cls(t_config, d_config, Teacher().to(device).eval(), student.to(device), adaptor_t,
                              adaptor_s)
    optimizer = torch.optim.AdamW(student.parameters(), lr=setup["lr"])
    ends: list[tuple[float, float]] = []
    with distiller:
        distiller.train(optimizer, loader, num_epochs=spec["epochs"], max_grad_norm=1.0,
                        callback=lambda model, step: ends.append(stamp()))
    extra["test_accuracy"] = test_accuracy(spec, student.net, encoder)
    return ends


if __name__ == "__main__":
    main()
