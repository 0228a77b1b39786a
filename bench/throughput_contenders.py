"""One contender of bench/throughput.py, run in its own process: Distillery, student-only or TextBrewer.

`run_contender(spec)` trains one contender and returns its per-epoch wall and CPU seconds, samples/s
and test accuracy; bench/throughput.py prepares the data and teacher and starts one process per contender.
"""

from __future__ import annotations

import time

import _common as common

SETUPS = {
    "textcnn": {"type": "textcnn", "vocab": "char", "options": {"filter_sizes": [2, 3, 4], "num_filters": 128},
                "lr": 1e-3, "matches": False, "transformer": False},
    "t4tiny": {"type": "transformer", "vocab": "teacher", "options": {"preset": "T4-tiny"}, "lr": 1e-4,
               "matches": False, "transformer": True},
    "t4tiny_matches": {"type": "transformer", "vocab": "teacher", "options": {"preset": "T4-tiny"}, "lr": 1e-4,
                       "matches": True, "transformer": True},
}
TEMPERATURE, ALPHA = 2.0, 0.8


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
    torch.manual_seed(spec.get("seed", 42))  # the students' initialisation
    started = stamp()  # epoch 1 includes reading and encoding the data and loading the teacher
    runner = {"student_only": run_student_only, "distillery": run_distillery, "distillery_unbucketed": run_distillery,
              "distillery_bucketed": run_distillery, "distillery_bf16": run_distillery,
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
        "name": f"throughput {spec['setup']}", "seed": spec.get("seed", 42),
        "data": {"train": spec["data"]["train"], "dev": spec["data"]["dev"], "test": spec["data"]["test"],
                 "labels": spec["labels"], "max_length": spec["max_length"]},
        # distillery_bf16: the teacher pass in bfloat16 (teacher.precision, an opt-in; float32 otherwise)
        "teacher": {"path": spec["teacher"], "precision": "bfloat16" if spec["contender"] == "distillery_bf16"
                    else "auto"},
        "student": {"type": setup["type"], "vocab": setup["vocab"], "embedding_dim": 128,
                    "options": setup["options"]},
        "kd": {"temperature": TEMPERATURE, "alpha": alpha, "loss": "kl"},
        "train": {"epochs": spec["epochs"], "batch_size": spec["batch_size"], "learning_rate": setup["lr"],
                  "lr_schedule": "constant", "device": spec.get("device", "cpu"), "amp": spec.get("amp", "off"),
                  "log_every": 1, "checkpoint_every": 10 ** 9,
                  # distillery: the default (auto); _unbucketed: plain random batches; _bucketed: always on
                  "bucket_by_length": {"distillery_unbucketed": "off", "distillery_bucketed": "on"}.get(
                      spec["contender"], "auto"),
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
    generator = torch.Generator().manual_seed(spec.get("seed", 42))
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
                                         collate_fn=collate, generator=torch.Generator().manual_seed(spec.get("seed", 42)))
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
