"""The training loop: one run of an ExperimentConfig, reported through an event sink.

    run(config, sink, should_cancel) -> results

Events (`sink.emit(kind, payload)`), in order:
    start  {"total_steps", "steps_per_epoch", "train_examples", "device"}
    step   {"step", "epoch", "metrics": {"loss", "kd_loss", "hard_loss", "lr"}}   every train.log_every steps
    eval   {"step", "epoch", "split": "dev", "metrics": {"accuracy", "macro_f1"}} per epoch / eval_every
    eval   {"step", "split": "test", ...}                                       once, for the best student
    result the results dict this function returns

The teacher runs once over every split before training; its logits are reused by every epoch.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from distill_core.config import ExperimentConfig
from distill_core.data import Split, read_split
from distill_core.errors import ConfigError, RunCancelled, TrainingError
from distill_core.evaluate import accuracy_and_macro_f1, classification_report
from distill_core.export import save_student
from distill_core.losses import distillation_loss
from distill_core.seeding import seed_everything
from distill_core.size import compare, size_report
from distill_core.students import build_student
from distill_core.teachers import inspect_checkpoint, label_order, load_teacher, teacher_logits
from distill_core.vocab import Encoder, TeacherPieces, Vocab

log = logging.getLogger(__name__)


class Sink(Protocol):
    def emit(self, kind: str, payload: dict[str, Any]) -> None: ...


class NullSink:
    def emit(self, kind: str, payload: dict[str, Any]) -> None:
        pass


@dataclass
class Encoded:
    """A split ready for the loop: student ids, lengths, gold labels and the teacher's logits."""

    ids: torch.Tensor  # (N, L) long, right-padded with 0
    lengths: torch.Tensor  # (N,) long
    labels: torch.Tensor  # (N,) long
    teacher: torch.Tensor  # (N, C) float32 teacher logits, columns in dataset label order

    def __len__(self) -> int:
        return self.labels.numel()

    def batch(self, index: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, ...]:
        lengths = self.lengths[index]
        ids = self.ids[index, : int(lengths.max())]  # (b, L_b): trim to the batch's longest example
        return ids.to(device), lengths.to(device), self.labels[index].to(device), self.teacher[index].to(device)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device={name!r} but this machine has no CUDA device; use 'auto' or 'cpu'.",
                          field="train.device")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConfigError(f"train.device={name!r} is not a device name (auto, cpu, cuda, cuda:N).",
                          field="train.device") from None


def load_splits(config: ExperimentConfig) -> dict[str, Split]:
    """Train, dev and test splits. Without a dev file, a seeded 10% of train is held out as dev."""
    data = config.data
    if not data.labels:
        raise ConfigError("data.labels is empty: list the class names in index order.", field="data.labels")
    splits = {"train": read_split(data.train, data, data.labels, "train")}
    if data.dev:
        splits["dev"] = read_split(data.dev, data, data.labels, "dev")
    else:
        train = splits["train"]
        if len(train) < 2:
            raise ConfigError("Without a dev file the train split needs at least 2 examples to hold one out.",
                              field="data.dev")
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(config.seed)).tolist()
        held = max(1, len(train) // 10)
        splits["dev"] = train.subset(sorted(order[:held]), "dev")
        splits["train"] = train.subset(sorted(order[held:]), "train")
    if data.test:
        splits["test"] = read_split(data.test, data, data.labels, "test")
    return splits


def build_encoder(config: ExperimentConfig, train: Split, tokenizer: Any) -> Encoder:
    if config.student.vocab == "teacher":
        return TeacherPieces(tokenizer)
    return Vocab.build(train.texts + (train.pairs or []), config.student.vocab)


def run(config: ExperimentConfig, sink: Sink | None = None,
        should_cancel: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Distil the teacher into the student described by `config`; return the results dict.

    Loss per batch: alpha * CE(student, y) + (1 - alpha) * kd(student, teacher, T) (see losses.py).
    Raises DistillError subclasses for problems a user can fix and RunCancelled when
    `should_cancel()` turns true (polled every step; it must be cheap).
    """
    sink = sink or NullSink()
    started = time.monotonic()
    seed_everything(config.seed)
    device = resolve_device(config.train.device)
    labels = list(config.data.labels)
    splits = load_splits(config)
    teacher_info = inspect_checkpoint(config.teacher.path)
    teacher, tokenizer = load_teacher(config.teacher.path, device, labels)
    order = label_order(teacher_info["labels"], labels)

    encoder = build_encoder(config, splits["train"], tokenizer)
    max_length = config.data.max_length
    encoded: dict[str, Encoded] = {}
    for name, split in splits.items():
        ids, lengths = encoder.encode(split.texts, split.pairs, max_length)
        logits = teacher_logits(teacher, tokenizer, split.texts, split.pairs, max_length,
                                batch_size=max(64, config.train.batch_size), device=device)
        if order is not None:
            logits = logits[:, order]
        encoded[name] = Encoded(ids, lengths, torch.tensor(split.labels, dtype=torch.long), logits)
    teacher_seconds = time.monotonic() - started
    log.info("Teacher logits for %s in %.1f s", {k: len(v) for k, v in encoded.items()}, teacher_seconds)

    seed_everything(config.seed)  # the student's initialisation must not depend on the teacher's work
    student = build_student(config.student.type, encoder.vocab_size, len(labels), config.student.embedding_dim,
                            config.student.options).to(device)
    optimizer = make_optimizer(config, student)
    train = encoded["train"]
    t = config.train
    steps_per_epoch = math.ceil(len(train) / t.batch_size)
    total_steps = steps_per_epoch * t.epochs if t.max_steps is None else min(t.max_steps, steps_per_epoch * t.epochs)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(t.lr_schedule, t.warmup_ratio, total_steps))
    sink.emit("start", {"total_steps": total_steps, "steps_per_epoch": steps_per_epoch,
                        "train_examples": len(train), "device": str(device)})

    generator = torch.Generator().manual_seed(config.seed)
    best: dict[str, Any] = {"accuracy": -1.0}
    best_state = copy.deepcopy(student.state_dict())
    step = 0
    for epoch in range(1, t.epochs + 1):
        student.train()
        permutation = torch.randperm(len(train), generator=generator)
        for start in range(0, len(train), t.batch_size):
            if step >= total_steps:
                break
            step += 1
            ids, lengths, y, z_t = train.batch(permutation[start: start + t.batch_size], device)
            terms = distillation_loss(student(ids, lengths), z_t, y, config.kd.temperature, config.kd.alpha,
                                      config.kd.loss, config.kd.t2_scaling)
            check_finite(terms, step)
            optimizer.zero_grad(set_to_none=True)
            terms["loss"].backward()
            if t.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(student.parameters(), t.grad_clip)
            lr = optimizer.param_groups[0]["lr"]  # the rate this step used
            optimizer.step()
            scheduler.step()
            if step % t.log_every == 0 or step == total_steps:
                metrics = {k: float(v.detach()) for k, v in terms.items()}
                metrics["lr"] = lr
                sink.emit("step", {"step": step, "epoch": epoch, "metrics": metrics})
            if should_cancel is not None and should_cancel():
                raise RunCancelled(f"Cancelled at step {step}.")
            if t.eval_every and step % t.eval_every == 0:
                best, best_state = _evaluate_dev(student, encoded["dev"], labels, device, step, epoch, sink, best,
                                                 best_state, t.batch_size)
        if not t.eval_every:
            best, best_state = _evaluate_dev(student, encoded["dev"], labels, device, step, epoch, sink, best,
                                             best_state, t.batch_size)
        if step >= total_steps:
            break
    train_seconds = time.monotonic() - started - teacher_seconds

    student.load_state_dict(best_state)
    test_name = "test" if "test" in encoded else "dev"
    test = encoded[test_name]
    student_pred = predict_labels(student, test, device, t.batch_size)
    student_report = classification_report(test.labels.numpy(), student_pred.numpy(), labels)
    teacher_report = classification_report(test.labels.numpy(), test.teacher.argmax(dim=1).numpy(), labels)
    if test_name == "test":  # a dev re-evaluation would collide with the dev point at this step
        sink.emit("eval", {"step": step, "epoch": best.get("epoch"), "split": "test",
                           "metrics": {k: student_report[k] for k in ("accuracy", "macro_f1")}})

    student_size = size_report(student, lambda b: {"input_ids": torch.randint(3, encoder.vocab_size, (b, max_length),
                                                                              device=device),
                                                   "lengths": torch.full((b,), max_length, device=device)}, device)
    teacher_size = size_report(teacher, lambda b: {
        "input_ids": torch.randint(0, teacher.config.vocab_size, (b, max_length), device=device),
        "attention_mask": torch.ones(b, max_length, dtype=torch.long, device=device)}, device,
        bytes_on_disk=teacher_info["size_bytes"])
    export_dir = None
    if config.output_dir:
        export_dir = str(save_student(student, encoder, student_type=config.student.type,
                                      embedding_dim=config.student.embedding_dim, labels=labels,
                                      max_length=max_length, output_dir=config.output_dir, config=config.to_dict()))
    results = {
        "labels": labels,
        "test_split": test_name,
        "student": student_report,
        "teacher": teacher_report,
        "size": compare(teacher_size, student_size),
        "best_dev": {k: best.get(k) for k in ("accuracy", "macro_f1", "epoch", "step")},
        "export_dir": export_dir,
        "steps": step,
        "examples": {name: len(split) for name, split in encoded.items()},
        "seconds": {"teacher_inference": round(teacher_seconds, 3), "training": round(train_seconds, 3),
                    "total": round(time.monotonic() - started, 3)},
    }
    sink.emit("result", results)
    return results


def make_optimizer(config: ExperimentConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    t = config.train
    params = model.parameters()
    if t.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=t.learning_rate, weight_decay=t.weight_decay)
    if t.optimizer == "adam":
        return torch.optim.Adam(params, lr=t.learning_rate, weight_decay=t.weight_decay)
    if t.optimizer == "adadelta":
        return torch.optim.Adadelta(params, lr=t.learning_rate, weight_decay=t.weight_decay)
    return torch.optim.SGD(params, lr=t.learning_rate, momentum=0.9, weight_decay=t.weight_decay)


def lr_factor(schedule: str, warmup_ratio: float, total_steps: int) -> Callable[[int], float]:
    """Multiplier of the base learning rate at (0-based) step s: linear warm-up, then the schedule.

    warm-up: (s + 1) / w for s < w = round(warmup_ratio * total); then with p = (s - w) / (total - w):
    constant 1, linear 1 - p, cosine (1 + cos(pi * p)) / 2.
    """
    warmup = round(warmup_ratio * total_steps)
    decay_steps = max(1, total_steps - warmup)

    def factor(s: int) -> float:
        if s < warmup:
            return (s + 1) / warmup
        p = min(1.0, (s - warmup) / decay_steps)
        if schedule == "linear":
            return 1.0 - p
        if schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * p))
        return 1.0

    return factor


def check_finite(terms: dict[str, torch.Tensor], step: int) -> None:
    """Stop on a NaN/inf loss, naming the step and the first term that went bad."""
    for name, value in terms.items():
        if not torch.isfinite(value.detach()).all():
            raise TrainingError(f"The {name} became {float(value.detach())} at step {step}; lower the learning rate or "
                                f"the temperature, or check the data.")


@torch.no_grad()
def predict_labels(model: torch.nn.Module, split: Encoded, device: torch.device, batch_size: int) -> torch.Tensor:
    """Arg-max predictions (N,) on the CPU; the model's train/eval mode is restored."""
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, len(split), max(1, batch_size * 2)):
        index = torch.arange(start, min(start + batch_size * 2, len(split)))
        ids, lengths, _, _ = split.batch(index, device)
        out.append(model(ids, lengths).argmax(dim=-1).cpu())  # (b,)
    model.train(was_training)
    return torch.cat(out)


def _evaluate_dev(student, dev: Encoded, labels, device, step, epoch, sink, best, best_state, batch_size):
    """Dev accuracy/macro-F1 event; keep a copy of the best student so far (by accuracy)."""
    metrics = accuracy_and_macro_f1(dev.labels.numpy(), predict_labels(student, dev, device, batch_size).numpy(),
                                    labels)
    sink.emit("eval", {"step": step, "epoch": epoch, "split": "dev", "metrics": metrics})
    if metrics["accuracy"] > best["accuracy"]:
        best = {**metrics, "epoch": epoch, "step": step}
        best_state = copy.deepcopy(student.state_dict())
    return best, best_state
