"""The "fine-tune teacher" run type: train a Hugging Face checkpoint on hard labels, save it as a teacher.

It reuses the distiller's Trainer (schedules, evaluation, best checkpoint, exact resume, cancel):
the model is wrapped to look like a student, there is no teacher (zero soft targets) and the
soft-label weight is 0. The output directory becomes a `save_pretrained` checkpoint that any
later experiment can name as its teacher.

The data path is the streamed one of a distillation (streaming.py): every split is counted and
checked from its file, tokenised chunk by chunk with the base checkpoint's own tokenizer into a
token store (token_store.py) and read batch by batch, so RSS does not grow with the data. The
batches equal those of the in-memory encoding (TeacherPieces.encode, trimmed to each batch's
longest example), bitwise; tested.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from distill_core import checkpointing, environment, streaming
from distill_core.config import ExperimentConfig
from distill_core.errors import CheckpointError, ConfigError
from distill_core.evaluate import report_for
from distill_core.progress import Phases
from distill_core.run_parts import NullSink, resolve_device
from distill_core.seeding import seed_everything
from distill_core.size import count_parameters, size_report
from distill_core.storage import writing
from distill_core.token_store import StoredSplit, TokenStore
from distill_core.trainer import Trainer, predict_labels
from distill_core.vocab import Encoder, TeacherPieces

log = logging.getLogger(__name__)


class HFClassifier(torch.nn.Module):
    """A sequence-classification model called like a student: (input_ids (B, T), lengths (B,)) -> logits (B, C)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if lengths is None:
            mask = torch.ones_like(input_ids)
        else:
            positions = torch.arange(input_ids.size(1), device=input_ids.device)  # (T,)
            mask = (positions[None, :] < lengths[:, None]).long()  # (B, T)
        return self.model(input_ids=input_ids, attention_mask=mask).logits  # (B, C)


class HardLabelSplit(StoredSplit):
    """A streamed split whose KD targets are zeros: there is no teacher, and the Trainer wants targets even
    when their weight is 0 (as the in-memory path's zero `teacher` tensor gave it)."""

    def __init__(self, store: TokenStore, num_labels: int):
        super().__init__(store, None)
        self.num_labels = num_labels

    def teacher_rows(self, index: np.ndarray) -> torch.Tensor:
        return torch.zeros(len(index), self.num_labels)  # (b, C)


def tokenise_splits(config: ExperimentConfig, sources: dict[str, streaming.SplitSource], encoder: Encoder,
                    cache_dir: str | Path | None, phases: Phases) -> dict[str, HardLabelSplit]:
    """Every split's token store, under `cache_dir`/tokens (kept, keyed like a distillation's) or in a
    scratch directory removed once the stores are mapped (they stay readable until the run ends)."""
    identity = streaming.encoder_identity(encoder, config.teacher.path)
    with streaming.data_root(cache_dir) as root, phases.phase(
            "tokenising", total=sum(s.rows for s in sources.values()), poll_cancel=True) as progress:
        return {name: HardLabelSplit(streaming.tokenise(config, source, encoder, identity, root / "tokens", progress),
                                     len(config.data.labels)) for name, source in sources.items()}


def run_finetune(config: ExperimentConfig, sink: Any = None, should_cancel: Callable[[], bool] | None = None, *,
                 resume: bool = True, cache_dir: str | Path | None = None,
                 hub_cache: str | Path | None = None) -> dict[str, Any]:
    """Fine-tune `config.teacher.path` on the dataset's hard labels; the result is a teacher checkpoint.

    Started by distiller.run; the Trainer comes from trainer.py, the streamed data path from streaming.py.
    `cache_dir` keeps the token stores for later runs (a resumed one skips tokenising); without it they
    live in a scratch directory. The base may be a Hub reference (`hub:org/name@rev`), resolved into
    `hub_cache` first (hub.py).
    """
    from distill_core import hub
    from distill_core.teachers import inspect_checkpoint

    sink = sink or NullSink()
    config = copy.deepcopy(hub.localise(config, hub_cache)[0])  # hard-label-only settings below must not leak
    if not config.output_dir:
        raise ConfigError("A fine-tune run needs output_dir: the new teacher checkpoint is written there.",
                          field="output_dir")
    started = time.monotonic()
    seed_everything(config.seed)
    device = resolve_device(config.train.device)
    sink.emit("environment", environment.record(config.seed, device, [config.teacher.path]))
    labels = list(config.data.labels)
    phases = Phases(sink, should_cancel)
    reading = phases.phase("reading", total=1 + bool(config.data.dev) + bool(config.data.test) + 1, unit="file")
    with reading:
        sources, _ = streaming.plan_splits(config, None, reading)  # rows counted and checked; nothing held
        base_info = inspect_checkpoint(config.teacher.path)
        model, tokenizer = _load_base(config, labels)
        reading.advance()
    encoded = tokenise_splits(config, sources, TeacherPieces(tokenizer), cache_dir, phases)
    wrapped = HFClassifier(model).to(device)
    config.kd.alpha, config.kd.kd_weight = 1.0, 0.0  # hard labels only
    trainer = Trainer(config, wrapped, encoded, labels, device, sink, should_cancel)
    with phases.phase("training", total=trainer.total_steps, unit="step") as trainer.progress:
        trainer.train(resume)
    trainer.progress = None
    wrapped.load_state_dict(trainer.best_state)

    test_name = "test" if "test" in encoded else "dev"
    test = encoded[test_name]
    with phases.phase("evaluating", total=len(test), poll_cancel=True) as progress:
        report = report_for(test.labels.numpy(), predict_labels(wrapped, test, device, config.train.batch_size,
                                                                progress=progress.advance).numpy(), labels)
    with phases.phase("export", unit="file"), writing(config.output_dir, "fine-tuned teacher"):
        sink.emit("export", {"path": str(config.output_dir)})  # a sink may refuse: nothing below is written
        model.save_pretrained(config.output_dir)
        tokenizer.save_pretrained(config.output_dir)
    checkpointing.remove(checkpointing.checkpoint_path(config.output_dir))
    length = config.data.max_length
    with phases.phase("size", total=1, unit="model"):
        size = size_report(model, lambda b: {
            "input_ids": torch.randint(0, model.config.vocab_size, (b, length), device=device),
            "attention_mask": torch.ones(b, length, dtype=torch.long, device=device)},
            device, bytes_on_disk=inspect_checkpoint(config.output_dir)["size_bytes"])
    results = {
        "kind": "finetune_teacher",
        "labels": labels,
        "test_split": test_name,
        "student": report,  # the fine-tuned model, shown where a distillation shows its student
        "teacher": None,
        "size": {"student": size, "teacher": {**count_parameters(model), "bytes": base_info["size_bytes"]}},
        "best_dev": {k: trainer.best.get(k) for k in ("accuracy", "macro_f1", "epoch", "step")},
        "export_dir": str(config.output_dir),
        "teacher_checkpoint": str(config.output_dir),
        "steps": trainer.step,
        "stopped_early": trainer.stopped_early,
        "resumed_from": trainer.resumed_from,
        "examples": {name: len(split) for name, split in encoded.items()},
        "seconds": {"total": round(time.monotonic() - started, 3)},
    }
    sink.emit("result", results)
    return results


def _load_base(config: ExperimentConfig, labels: list[str]) -> tuple[torch.nn.Module, Any]:
    """The base checkpoint with a fresh head for `labels`, in float32 whatever was saved (master weights)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(config.teacher.path)
        model = AutoModelForSequenceClassification.from_pretrained(
            config.teacher.path, dtype=torch.float32, num_labels=len(labels), id2label=dict(enumerate(labels)),
            label2id={label: i for i, label in enumerate(labels)}, ignore_mismatched_sizes=True,
            problem_type="multi_label_classification" if config.data.multi_label else "single_label_classification")
    except Exception as exc:
        raise CheckpointError(f"Cannot load {config.teacher.path} for fine-tuning: {exc}", field="teacher.path") from exc
    return model, tokenizer
