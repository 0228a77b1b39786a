"""The training loop: one run of an ExperimentConfig, reported through an event sink.

    run(config, sink, should_cancel) -> results

Events (`sink.emit(kind, payload)`), in order:
    environment  environment.record(): versions, packages, commit, host, GPUs, teacher checksums (once, first)
    phase  {"name", "label", "done", "total", "rate", "eta_seconds", ...} as each phase starts, advances
           (throttled, see progress.py) and ends: reading, augmenting, tokenising, teacher, training,
           evaluating, teacher_test, size, export
    start  {"total_steps", "steps_per_epoch", "train_examples", "device"}
    step   {"step", "epoch", "metrics": {"loss", "kd_loss", "hard_loss", "lr"}}   every train.log_every steps
    eval   {"step", "epoch", "split": "dev", "metrics": {"accuracy", "macro_f1"}} per epoch / eval_every
    eval   {"step", "split": "test", ...}                                       once, for the best student
    checkpoint {"step", "path"}  a checkpoint is written but not yet renamed into place (the resume point)
    export {"path"}              before the student is written to output_dir
    result the results dict this function returns

Make every event so far durable on `checkpoint`: a resumed run starts after that step and never
emits the earlier ones again. A sink may raise from `checkpoint` or `export` to forbid the write
(the worker does once another worker has taken its run over); nothing changes on disk and the
exception propagates out of run().

The teacher runs once over every split before training; its logits are reused by every epoch.
When every stage has intermediate matches the teacher runs on every training batch anyway, so the
train split's logits are taken from that live pass instead of being computed twice. The dev split
needs no teacher logits (the student is judged on gold labels; the teacher's own report uses test),
unless there is no test split and dev stands in for it.
"""

from __future__ import annotations

import copy
import logging
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from distill_core import checkpointing, environment, parallel, storage, streaming
from distill_core.bucketing import example_lengths, sampler_for
from distill_core.config import ExperimentConfig, StageConfig
from distill_core.data import Split, read_split
from distill_core.embedding_init import fold_embeddings, initialise_embeddings
from distill_core.errors import CheckpointError, ConfigError, RunCancelled, TrainingError
from distill_core.evaluate import accuracy_and_macro_f1, report_for
from distill_core.export import save_student
from distill_core.losses import hard_bce, hard_ce, kd_losses
from distill_core.matches import MatchLoss, parse_matches, validate_matches
from distill_core.progress import Phase, Phases
from distill_core.run_parts import (  # noqa: F401  (NullSink, Sink: the engine others are handed)
    NullSink,
    Sink,
    check_finite,
    hold_out_dev,
    make_optimizer,
    resolve_device,
)
from distill_core.schedules import lr_factor, temperature_schedules, weight_schedules
from distill_core.seeding import seed_everything
from distill_core.size import compare, size_report
from distill_core.student_base import length_mask
from distill_core.students import build_student
from distill_core.teachers import inspect_checkpoint, label_order, load_teacher, teacher_logits
from distill_core.vocab import Encoder, TeacherPieces, Vocab
from distill_core.vocab_pruning import prune_student, split_ids

log = logging.getLogger(__name__)
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class Encoded:
    """A split ready for the loop: student ids, lengths, gold labels and the teacher's logits."""

    ids: torch.Tensor  # (N, L) long, right-padded with 0
    lengths: torch.Tensor  # (N,) long
    labels: torch.Tensor  # (N,) long class indices, or (N, C) float multi-hot
    teacher: torch.Tensor | None  # (N, C) float32 teacher logits in dataset label order; None: not computed

    def __len__(self) -> int:
        return self.labels.size(0)

    def concat(self, other: Encoded) -> Encoded:
        if self.teacher is None or other.teacher is None:
            raise ValueError("Only splits with precomputed teacher logits can be joined")
        width = max(self.ids.size(1), other.ids.size(1))

        def pad(ids: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.pad(ids, (0, width - ids.size(1)))  # (N, width)

        return Encoded(torch.cat([pad(self.ids), pad(other.ids)]), torch.cat([self.lengths, other.lengths]),
                       torch.cat([self.labels, other.labels]), torch.cat([self.teacher, other.teacher]))

    def batch(self, index: torch.Tensor, device: torch.device, width: int | None = None) -> tuple[torch.Tensor | None, ...]:
        lengths = self.lengths[index]
        ids = self.ids[index, : width or int(lengths.max())]  # (b, L_b): trim to the batch's longest example
        teacher = None if self.teacher is None else self.teacher[index].to(device)
        return ids.to(device), lengths.to(device), self.labels[index].to(device), teacher


def load_splits(config: ExperimentConfig, progress: Phase | None = None) -> dict[str, Split]:
    """Train, dev and test splits. Without a dev file, a seeded 10% of train is held out as dev.

    `progress` advances by one per file read.
    """
    data = config.data
    if not data.labels:
        raise ConfigError("data.labels is empty: list the class names in index order.", field="data.labels")
    advance = progress.advance if progress is not None else (lambda n=1: None)
    splits = {"train": read_split(data.train, data, data.labels, "train")}
    advance()
    if data.dev:
        splits["dev"] = read_split(data.dev, data, data.labels, "dev")
        advance()
    else:
        splits["dev"], splits["train"] = hold_out_dev(splits["train"], config.seed)
    if data.test:
        splits["test"] = read_split(data.test, data, data.labels, "test")
        advance()
    return splits


def build_encoder(config: ExperimentConfig, train: Split, tokenizer: Any) -> Encoder:
    if config.student.vocab == "teacher":
        return TeacherPieces(tokenizer)
    return Vocab.build(train.texts + (train.pairs or []), config.student.vocab)


def run(config: ExperimentConfig, sink: Sink | None = None, should_cancel: Callable[[], bool] | None = None, *,
        resume: bool = True, cache_dir: str | Path | None = None,
        hub_cache: str | Path | None = None) -> dict[str, Any]:
    """Distil the teacher into the student described by `config`; return the results dict.

    Loss per batch: w_hard * CE(student, y) + w_kd * kd(student, teacher, T) (see losses.py), with
    w_hard = alpha and w_kd = 1 - alpha unless kd.kd_weight is set, each times its schedule's factor.
    With `config.output_dir`, a resumable checkpoint is kept there and `run` continues from it when
    `resume` is true. `cache_dir` keeps teacher outputs on disk for later runs (teacher_cache.py).
    The export also gets environment.json (environment.py), what an identical re-run needs beside
    config.json. Both directories are checked for writability first (StorageError). Teachers given
    as `hub:org/name@rev` are resolved into `hub_cache` first (hub.py).
    Raises DistillError subclasses for problems a user can fix and RunCancelled when
    `should_cancel()` turns true (polled every step; it must be cheap).
    """
    from distill_core import hub

    # A full or read-only disk must fail the run now, with its path, not after hours of training.
    if config.output_dir:
        storage.check_writable(config.output_dir, "output directory")
    if cache_dir is not None:
        storage.check_writable(cache_dir, "teacher cache")
    config, _ = hub.localise(config, hub_cache)
    if config.tune.enabled:  # trials first, then this function again with the winner (tune.py)
        from distill_core.tune import tune_and_run

        return tune_and_run(config, sink, should_cancel, engine=sys.modules[__name__], resume=resume,
                            cache_dir=cache_dir, hub_cache=hub_cache)
    if config.kind == "finetune_teacher":
        from distill_core.finetune import run_finetune

        return run_finetune(config, sink, should_cancel, engine=sys.modules[__name__], resume=resume,
                            hub_cache=hub_cache)
    if config.kind == "lm_distill":
        from distill_core.lm.run import run_lm

        return run_lm(config, sink, should_cancel, resume=resume, cache_dir=cache_dir, hub_cache=hub_cache)
    sink = sink or NullSink()
    started = time.monotonic()
    seed_everything(config.seed)
    device = resolve_device(config.train.device)
    group = parallel.setup(config, device)  # None unless started by torchrun with WORLD_SIZE > 1
    device = parallel.rank_device(group, device)
    if group is not None and not group.is_main:
        sink = NullSink()  # rank 0 reports for every rank
    env = environment.record(config.seed, device, [path for path, _ in config.teacher.members()])
    sink.emit("environment", env)
    if config.train.amp == "fp16" and device.type != "cuda":
        raise ConfigError("train.amp='fp16' needs a CUDA device; use 'bf16' or 'off' on the CPU.", field="train.amp")
    labels = list(config.data.labels)
    phases = Phases(sink, should_cancel)
    files = 1 + bool(config.data.dev) + bool(config.data.test)
    augmenting = config.augment.enabled  # augmentation holds the train texts and their copies in memory
    vocab_kind = None if config.student.vocab == "teacher" else config.student.vocab
    with phases.phase("reading", total=files + len(config.teacher.members()), unit="file") as progress:
        if augmenting:
            splits = load_splits(config, progress)
        else:  # every split streamed from disk into token stores (streaming.py)
            splits, vocab = streaming.plan_splits(config, vocab_kind, progress)
        teachers = load_teachers(config, device, labels, progress)
    teacher, tokenizer, teacher_info = teachers[0].model, teachers[0].tokenizer, teachers[0].info
    if augmenting:
        from distill_core.augment import augment_texts

        with phases.phase("augmenting", total=len(splits["train"]), poll_cancel=True) as progress:
            neighbours = None
            if config.augment.replace == "teacher_neighbours":  # seconds; cached with the teacher outputs
                from distill_core.augment import units
                from distill_core.augment_neighbours import teacher_neighbours

                neighbours = teacher_neighbours([u for text in splits["train"].texts for u in units(text)[0]],
                                                tokenizer, teacher, config.augment.neighbours, cache_dir,
                                                teachers[0].path)
            texts = augment_texts(splits["train"].texts, config.augment, config.seed, progress=progress.advance,
                                  neighbours=neighbours)
        splits["augmented"] = Split("augmented", splits["train"].path, texts, None, [-1] * len(texts))
        log.info("Augmentation made %d extra training texts", len(texts))
        encoder = build_encoder(config, splits["train"], tokenizer)  # after augmentation, as before
    else:
        encoder = vocab if vocab is not None else TeacherPieces(tokenizer)

    unlabelled = {"train"} if live_train_logits(config, len(teachers)) else set()
    if "test" in splits:
        unlabelled.add("dev")  # judged on gold labels only; the teacher's report is on test
    encode = encode_splits if augmenting else streaming.encode_sources
    with parallel.teacher_cache_turn(group, cache_dir, config.output_dir) as shared_cache:
        encoded = encode(config, splits, encoder, teachers, device, shared_cache, lambda: phases.check_cancel("teacher"),
                         without_logits=unlabelled, phases=phases)
    if "augmented" in encoded:
        augmented = encoded.pop("augmented")
        augmented.labels = teacher_predictions(augmented.teacher, config.data.multi_label)  # the teacher labels copies
        encoded["train"] = encoded["train"].concat(augmented)
    teacher_seconds = time.monotonic() - started
    log.info("Teacher outputs for %s in %.1f s", {k: len(v) for k, v in encoded.items()}, teacher_seconds)

    seed_everything(config.seed)  # the student's initialisation must not depend on the teacher's work
    student = build_student(config.student.type, encoder.vocab_size, len(labels), config.student.embedding_dim,
                            config.student.options).to(device)
    embedding_info = initialise_embeddings(student, config.student, teacher=teacher, seed=config.seed,
                                           tokens=getattr(encoder, "tokens", None))
    if config.student.prune_vocab:  # the train split's pieces only (vocab_pruning.py)
        embedding_info["pruned_vocab"] = prune_student(student, split_ids(encoded["train"]), tokenizer,
                                                       config.student.prune_unseen)
    parallel.reseed(group, config.seed, 0)
    trainer = Trainer(config, student, encoded, labels, device, sink, should_cancel, teacher, teacher_info)
    with phases.phase("training", total=trainer.total_steps, unit="step") as trainer.progress:
        trainer.train(resume)
    trainer.progress = None
    train_seconds = time.monotonic() - started - teacher_seconds
    if group is not None and not group.is_main:  # rank 0 tests, measures and exports the best student
        return {"rank": group.rank, "steps": trainer.step, "best_dev": trainer.best}

    student.load_state_dict(trainer.best_state)
    fold_embeddings(student)  # a projected table becomes the plain one it computes: export and size as usual
    max_length = config.data.max_length
    test_name = "test" if "test" in encoded else "dev"
    test = encoded[test_name]
    with phases.phase("evaluating", total=len(test), poll_cancel=True) as progress:
        student_pred = predict_labels(student, test, device, config.train.batch_size, progress=progress.advance)
        student_report = report_for(test.labels.numpy(), student_pred.numpy(), labels)
    with phases.phase("teacher_test"):  # its logits on this split were computed with the others: a report only
        teacher_report = report_for(test.labels.numpy(),
                                    teacher_predictions(test.teacher, config.data.multi_label).numpy(), labels)
    if test_name == "test":  # a dev re-evaluation would collide with the dev point at this step
        sink.emit("eval", {"step": trainer.step, "epoch": trainer.best.get("epoch"), "split": "test",
                           "metrics": {k: student_report[k] for k in ("accuracy", "macro_f1")}})

    def student_inputs(b: int) -> dict[str, torch.Tensor]:
        return {"input_ids": torch.randint(3, encoder.vocab_size, (b, max_length), device=device),
                "lengths": torch.full((b,), max_length, device=device)}

    def teacher_inputs(b: int) -> dict[str, torch.Tensor]:
        return {"input_ids": torch.randint(0, teacher.config.vocab_size, (b, max_length), device=device),
                "attention_mask": torch.ones(b, max_length, dtype=torch.long, device=device)}

    with phases.phase("size", total=2, unit="model") as progress:
        student_size = size_report(student, student_inputs, device)
        progress.advance()
        phases.check_cancel("size")
        teacher_size = size_report(teacher, teacher_inputs, device, bytes_on_disk=teacher_info["size_bytes"])
    export_dir = None
    if config.output_dir:
        with phases.phase("export", unit="file"):
            sink.emit("export", {"path": str(config.output_dir)})  # a sink may refuse: nothing below is written
            with storage.writing(config.output_dir, "output directory"):
                environment.write(config.output_dir, env)
            export_dir = str(save_student(student, encoder, student_type=config.student.type,
                                          embedding_dim=config.student.embedding_dim, labels=labels,
                                          max_length=max_length, output_dir=config.output_dir,
                                          config=config.to_dict(), multi_label=config.data.multi_label))
        checkpointing.remove(checkpointing.checkpoint_path(config.output_dir))
    results = {
        "labels": labels,
        "test_split": test_name,
        "student": student_report,
        "teacher": teacher_report,
        "size": {**compare(teacher_size, student_size), "teachers": len(teachers)},
        "teacher_precision": {"saved": teacher_info.get("dtype"),
                              "compute": str(next(teacher.parameters()).dtype).removeprefix("torch.")},
        "embedding_init": embedding_info,
        "best_dev": {k: trainer.best.get(k) for k in ("accuracy", "macro_f1", "epoch", "step")},
        "export_dir": export_dir,
        "steps": trainer.step,
        "stopped_early": trainer.stopped_early,
        "resumed_from": trainer.resumed_from,
        "examples": {name: len(split) for name, split in encoded.items()},
        "seconds": {"teacher_inference": round(teacher_seconds, 3), "training": round(train_seconds, 3),
                    "total": round(time.monotonic() - started, 3)},
        "environment": env,
    }
    sink.emit("result", results)
    return results


def live_train_logits(config: ExperimentConfig, n_teachers: int) -> bool:
    """Whether the train split's KD targets can come from the teacher pass that the matches need.

    True when one teacher runs on every batch of every stage (each has matches) on the student's own
    tokens, which are exactly the teacher's: no augmentation (its copies need labels up front) and no
    text pairs (the live pass has no segment ids).
    """
    return (n_teachers == 1 and not config.augment.enabled and config.data.text_pair_column is None
            and all(stage.matches for stage in config.stage_configs()))


@dataclass
class LoadedTeacher:
    model: torch.nn.Module
    tokenizer: Any
    info: dict[str, Any]
    path: str
    weight: float


def load_teachers(config: ExperimentConfig, device: torch.device, labels: list[str],
                  progress: Phase | None = None) -> list[LoadedTeacher]:
    """The teacher and any ensemble members, each checked against the dataset's label count."""
    loaded = []
    for i, (path, weight) in enumerate(config.teacher.members()):
        try:
            info = inspect_checkpoint(path)
            model, tokenizer = load_teacher(path, device, labels)
        except CheckpointError as exc:
            if i == 0:
                raise
            raise CheckpointError(f"Ensemble teacher {i} ({path}): {exc.message}",
                                  field=f"teacher.ensemble.{i - 1}.path") from None
        loaded.append(LoadedTeacher(model, tokenizer, info, path, weight))
        if progress is not None:
            progress.advance()
    return loaded


def encode_splits(config: ExperimentConfig, splits: dict[str, Split], encoder: Encoder, teachers: list[LoadedTeacher],
                  device: torch.device, cache_dir: str | Path | None,
                  on_batch: Callable[[], None] | None = None,
                  without_logits: set[str] = frozenset(), phases: Phases | None = None) -> dict[str, Encoded]:
    """Student ids for every split and the teachers' (weighted mean) logits, computed once or read from the cache.

    Splits in `without_logits` get none (Encoded.teacher None): the teacher does not run over them here.
    `phases` reports the tokenising and the teacher labelling (examples done over all splits and teachers).
    """
    from distill_core import teacher_cache

    phases = phases or Phases(NullSink())
    labels = list(config.data.labels)
    max_length = config.data.max_length
    total_weight = sum(t.weight for t in teachers)
    tokens = {}
    with phases.phase("tokenising", total=sum(len(split) for split in splits.values()), poll_cancel=True) as progress:
        for name, split in splits.items():
            tokens[name] = encode_in_chunks(encoder, split, max_length, progress)
    labelled = [name for name in splits if name not in without_logits]
    encoded = {}
    with phases.phase("teacher", total=sum(len(splits[name]) for name in labelled) * len(teachers)) as progress:
        for name, split in splits.items():
            mean = None
            for t in teachers if name in labelled else ():
                def compute(split: Split = split, t: LoadedTeacher = t) -> torch.Tensor:
                    return teacher_logits(t.model, t.tokenizer, split.texts, split.pairs, max_length,
                                          batch_size=max(64, config.train.batch_size), device=device,
                                          on_batch=on_batch, progress=progress.advance)

                done = progress.done + len(split)
                key = teacher_cache.cache_key(t.path, split, max_length, features=("logits",))
                logits = teacher_cache.get_or_compute(cache_dir, key, compute)  # (N, C)
                progress.update_to(done)  # a cache hit counts as labelled at once
                order = label_order(t.info["labels"], labels)
                if order is not None:
                    logits = logits[:, order]
                mean = logits * (t.weight / total_weight) + (0 if mean is None else mean)
            encoded[name] = Encoded(*tokens.pop(name), label_tensor(split.labels, len(labels), config.data.multi_label),
                                    mean)
    return encoded


def encode_in_chunks(encoder: Encoder, split: Split, max_length: int, progress: Phase,
                     chunk: int = 8192) -> tuple[torch.Tensor, torch.Tensor]:
    """encoder.encode over `split` a chunk at a time, so a large split reports progress; the same tensors."""
    if len(split) <= chunk:
        ids, lengths = encoder.encode(split.texts, split.pairs, max_length)
        progress.advance(len(split))
        return ids, lengths
    parts = []
    for start in range(0, len(split), chunk):
        end = start + chunk
        parts.append(encoder.encode(split.texts[start:end], split.pairs[start:end] if split.pairs is not None else None,
                                    max_length))
        progress.advance(len(parts[-1][1]))
    width = max(ids.size(1) for ids, _ in parts)
    pad_id = getattr(getattr(encoder, "tokenizer", None), "pad_token_id", None) or 0  # what encode pads with
    ids = torch.cat([torch.nn.functional.pad(ids, (0, width - ids.size(1)), value=pad_id) for ids, _ in parts])
    return ids, torch.cat([lengths for _, lengths in parts])  # (N, width), (N,)


def label_tensor(labels: list, num_labels: int, multi_label: bool) -> torch.Tensor:
    """(N,) class indices, or (N, C) multi-hot floats for multi-label data."""
    if not multi_label:
        return torch.tensor(labels, dtype=torch.long)
    y = torch.zeros(len(labels), num_labels)
    for i, row in enumerate(labels):
        if isinstance(row, list) and row:
            y[i, row] = 1.0
    return y


def teacher_predictions(logits: torch.Tensor, multi_label: bool) -> torch.Tensor:
    """Arg-max classes (N,), or the multi-hot set of classes with a positive logit (N, C)."""
    return (logits > 0).float() if multi_label else logits.argmax(dim=1)


@dataclass
class Stage:
    """A resolved stage: its settings, matches (with their projections) and step budget."""

    config: StageConfig
    match_loss: MatchLoss | None
    steps: int


class Trainer:
    """The optimisation loop of one run: stages, steps, evaluations, schedules, checkpoints, early stopping.

    With intermediate matches the teacher runs on every batch (output_hidden_states/attentions);
    without them its cached logits are all the loop needs.
    """

    def __init__(self, config: ExperimentConfig, student: torch.nn.Module, encoded: dict[str, Encoded],
                 labels: list[str], device: torch.device, sink: Sink, should_cancel: Callable[[], bool] | None,
                 teacher: torch.nn.Module | None = None, teacher_info: dict[str, Any] | None = None):
        self.config, self.student, self.encoded, self.labels = config, student, encoded, labels
        self.device, self.sink, self.should_cancel = device, sink, should_cancel
        self.teacher = teacher
        self.teacher_order = label_order(teacher_info["labels"], labels) if teacher_info else None
        t = config.train
        self.train_set = encoded["train"]
        self._train_lengths: torch.Tensor | None = None
        self.batches_per_epoch = math.ceil(len(self.train_set) / t.batch_size)
        self.steps_per_epoch = math.ceil(self.batches_per_epoch / t.grad_accumulation)
        self.stages = [Stage(sc, build_match_loss(config, sc, student, teacher_info, i).to(device)
                             if sc.matches else None, self.steps_per_epoch * sc.epochs)
                       for i, sc in enumerate(config.stage_configs())]
        self.total_steps = sum(stage.steps for stage in self.stages)
        if teacher is not None and any(s.match_loss is not None and s.match_loss.needs_attentions for s in self.stages):
            teacher.set_attn_implementation("eager")  # SDPA computes no attention maps to compare
        if t.max_steps is not None:
            self.total_steps = min(self.total_steps, t.max_steps)
        self.scaler = torch.amp.GradScaler("cuda", enabled=t.amp == "fp16")
        self.generator = torch.Generator().manual_seed(config.seed)
        # Similar lengths per batch (bucketing.py); its batches depend only on (seed, epoch), so resuming needs
        # just the epoch and position the checkpoint already holds.
        self.sampler = sampler_for(t.bucket_by_length, example_lengths(self.train_set), t.batch_size, config.seed)
        multi = config.data.multi_label
        self.kd_loss_fn = kd_losses.get("bce" if multi and config.kd.loss in ("kl", "ce") else config.kd.loss)
        self.hard_loss_fn = hard_bce if multi else hard_ce
        self.temperature_fn = temperature_schedules.get(config.kd.temperature_schedule)
        self.step = 0
        self.stage_index = 0
        self.stage_start_step = 0
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: Any = None
        self._reset_best()
        self.stopped_early = False
        self.resumed_from: int | None = None
        self.ckpt_path = checkpointing.checkpoint_path(config.output_dir) if config.output_dir else None
        self.progress: Phase | None = None  # the run's "training" phase, advanced every step (throttled)
        self.fingerprint = checkpointing.fingerprint(config.to_dict())
        self.group = parallel.current()  # data-parallel ranks (parallel.py), None in one process
        self.forwards: dict[int, torch.nn.Module] = {}  # stage index -> its (DDP-wrapped) parallel.Forward


    @property
    def train_lengths(self) -> torch.Tensor:
        """(N,) every train example's length (data parallel weights its terms by them): an in-memory split
        keeps them; a token store reads them once from its offsets (4 bytes a row)."""
        if self._train_lengths is None:
            lengths = self.train_set.lengths
            self._train_lengths = torch.as_tensor(lengths() if callable(lengths) else lengths)
        return self._train_lengths
    def _reset_best(self) -> None:
        """Each stage picks its own best student; the last stage's is the run's."""
        self.best: dict[str, Any] = {self.config.train.best_metric: -1.0}
        self.best_state = copy.deepcopy(self.student.state_dict())
        self.bad_evals = 0
        self.last_eval_step: int | None = None

    def _start_stage(self, index: int, start_step: int | None = None) -> None:
        stage = self.stages[index]
        self.stage_index = index
        self.stage_start_step = self.step if start_step is None else start_step
        params = list(self.student.parameters()) + (list(stage.match_loss.parameters()) if stage.match_loss else [])
        self.optimizer = make_optimizer(self.config, params, stage.config.learning_rate)
        t = self.config.train
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_factor(t.lr_schedule, t.warmup_ratio,
                                      min(stage.steps, self.total_steps - self.stage_start_step)))

    # --- the loop ---------------------------------------------------------------------
    def train(self, resume: bool) -> None:
        t = self.config.train
        epoch, next_batch, permutation = 1, 0, None
        state = checkpointing.load(self.ckpt_path, self.fingerprint) if resume and self.ckpt_path else None
        if state is not None:
            epoch, next_batch, permutation = self._restore(state)
        else:
            self._start_stage(0)
        self.sink.emit("start", {"total_steps": self.total_steps, "steps_per_epoch": self.steps_per_epoch,
                                 "train_examples": len(self.train_set), "device": str(self.device),
                                 "resumed_from": self.resumed_from, "stages": [s.config.name for s in self.stages]})
        if self.progress is not None:
            self.progress.resume_at(self.step)
        while self.step < self.total_steps:
            stage = self.stages[self.stage_index]
            stage_epochs_done = (self.step - self.stage_start_step) // self.steps_per_epoch
            if stage_epochs_done >= stage.config.epochs or (self.stopped_early and next_batch == 0):
                if self.stage_index + 1 == len(self.stages):
                    break
                self._start_stage(self.stage_index + 1)
                self._reset_best()
                self.stopped_early = False
                continue
            if self.sampler is not None:  # this epoch's bucketed batches (bucketing.py)
                bucketed = [torch.from_numpy(b) for b in self.sampler.epoch_batches(epoch)]
                n_batches = len(bucketed)

                def batch_at(i: int, bucketed: list[torch.Tensor] = bucketed) -> torch.Tensor:
                    return bucketed[i]
            else:
                if permutation is None:
                    permutation = torch.randperm(len(self.train_set), generator=self.generator)
                n_batches = self.batches_per_epoch  # sliced from the permutation as needed: no list of N/b tensors

                def batch_at(i: int, order: torch.Tensor = permutation) -> torch.Tensor:
                    return order[i * t.batch_size: (i + 1) * t.batch_size]
            b = next_batch
            while b < n_batches and self.step < self.total_steps and not self.stopped_early:
                group = [batch_at(i) for i in range(b, min(b + t.grad_accumulation, n_batches))]
                b += len(group)
                self._optimisation_step(group, epoch, stage)
                if t.eval_every and self.step % t.eval_every == 0:
                    self._evaluate(epoch)
                if self.step % t.checkpoint_every == 0:
                    self._save(epoch, b, permutation)
                if parallel.any_rank(self.should_cancel is not None and self.should_cancel(), self.group, self.device):
                    self._save(epoch, b, permutation)
                    raise RunCancelled(f"Cancelled at step {self.step}.")
            if b >= n_batches and not t.eval_every:
                self._evaluate(epoch)
            if self.stopped_early:  # skip the rest of this stage's epochs
                self.step = max(self.step, self.stage_start_step + stage.steps) if self.stage_index + 1 < len(
                    self.stages) else self.step
            epoch, next_batch, permutation = epoch + 1, 0, None
            self._save(epoch, 0, None)
            if self.stopped_early and self.stage_index + 1 == len(self.stages):
                break
        if self.last_eval_step != self.step:  # stopped by max_steps mid-epoch: judge the last student too
            self._evaluate(epoch - 1)

    def _optimisation_step(self, group: list[torch.Tensor], epoch: int, stage: Stage) -> None:
        t, kd, sc = self.config.train, self.config.kd, stage.config
        self.step += 1
        progress = (self.step - 1) / max(1, self.total_steps)
        hard_w = sc.alpha * weight_schedules.get(kd.hard_weight_schedule)(progress)
        kd_w = (1.0 - sc.alpha if sc.kd_weight is None else sc.kd_weight) * weight_schedules.get(
            kd.kd_weight_schedule)(progress)
        self.student.train()
        self.optimizer.zero_grad(set_to_none=True)
        sums: dict[str, float] = {}
        amp = torch.autocast(self.device.type, dtype=AMP_DTYPES.get(t.amp, torch.bfloat16), enabled=t.amp != "off")
        forward = self._forward(stage)
        for n, index in enumerate(group):
            share: dict[str, float] = {}
            if self.group is not None:  # this rank's slice of the global batch, and its share of each mean
                local, stand_in = parallel.shard(index, self.group)
                share = parallel.shares(self.train_lengths, index, local, stand_in,
                                        parallel.term_kinds(stage.match_loss))
                width = int(self.train_lengths[index].max())
                index = local
            ids, lengths, y, z_t = self.train_set.batch(index, self.device, width if share else None)
            with amp, parallel.no_sync(forward, n + 1 == len(group)):
                z_s, match_terms, live_logits = forward(ids, lengths)
                if z_t is None and live_logits is not None:  # KD targets from the live teacher (live_train_logits)
                    z_t = live_logits if self.teacher_order is None else live_logits[:, self.teacher_order]
            if z_t is None:
                raise TrainingError(f"Stage {sc.name!r} has no intermediate matches, so it needs the train split's "
                                    f"precomputed teacher logits, and there are none.")
            z_s, z_t = z_s.float(), z_t.float()  # (b, C)
            T = self.temperature_fn(sc.temperature, kd.temperature_final or sc.temperature, progress, z_s, z_t,
                                    kd.schedule_beta, kd.schedule_gamma)
            terms = {"kd_loss": self.kd_loss_fn(z_s, z_t, T, kd.t2_scaling), "hard_loss": self.hard_loss_fn(z_s, y)}
            terms["loss"] = hard_w * terms["hard_loss"] + kd_w * terms["kd_loss"]
            if match_terms:
                terms.update({k: v.float() for k, v in match_terms.items()})
                terms["intermediate_loss"] = sum(terms[k] for k in match_terms)
                terms["loss"] = terms["loss"] + terms["intermediate_loss"]
            check_finite(terms, self.step)
            terms["temperature"] = torch.as_tensor(T).float().mean()
            loss = terms["loss"]
            if share:  # world * share: DDP's gradient average is then the gradient of the whole batch's mean
                loss, terms = parallel.weighted(terms, match_terms, share, hard_w, kd_w, self.group.world)
            self.scaler.scale(loss / len(group)).backward()
            for name, value in terms.items():
                sums[name] = sums.get(name, 0.0) + float(value.detach()) / len(group)
        if t.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.student.parameters(), t.grad_clip)
        lr = self.optimizer.param_groups[0]["lr"]  # the rate this step used
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        if self.progress is not None:
            self.progress.update_to(self.step)
        if self.step % t.log_every == 0 or self.step == self.total_steps:
            if self.group is not None:
                sums = parallel.reduced_terms(sums, list(stage.match_loss.keys()) if stage.match_loss else [],
                                              hard_w, kd_w, self.group, self.device)
            metrics = {**sums, "lr": lr, "kd_weight": kd_w, "hard_weight": hard_w}
            self.sink.emit("step", {"step": self.step, "epoch": epoch, "stage": self.stage_index, "metrics": metrics})

    def _forward(self, stage: Stage) -> torch.nn.Module:
        """The student (and the stage's projections) as one module; DDP-wrapped across ranks (parallel.py)."""
        if self.stage_index not in self.forwards:
            self.forwards = {self.stage_index: parallel.wrap(parallel.Forward(self.student, stage.match_loss,
                                                                               self._match_terms),
                                                              self.group, self.device)}
        return self.forwards[self.stage_index].train()

    def _match_terms(self, match_loss: MatchLoss, out: Any, ids: torch.Tensor,
                     lengths: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Run the teacher on the student's own tokens; compare the matched layers. Returns (terms, teacher logits)."""
        mask = out.attention_mask if out.attention_mask is not None else length_mask(lengths, ids.size(1))
        with torch.no_grad():
            t_out = self.teacher(input_ids=ids, attention_mask=mask, output_hidden_states=True,
                                 output_attentions=match_loss.needs_attentions)
        return match_loss(out, t_out.hidden_states, t_out.attentions, mask), t_out.logits.detach()

    def _evaluate(self, epoch: int) -> None:
        """Dev accuracy/macro-F1 event; keep the best student; count evaluations for early stopping."""
        t = self.config.train
        dev = self.encoded["dev"]
        if self.group is None:
            predictions = predict_labels(self.student, dev, self.device, t.batch_size)
        else:  # the whole split, each batch predicted by one rank
            predictions = parallel.predict_labels(predict_labels, self.student, dev, self.device, t.batch_size,
                                                  self.group)
        metrics = accuracy_and_macro_f1(dev.labels.numpy(), predictions.numpy(), self.labels)
        self.sink.emit("eval", {"step": self.step, "epoch": epoch, "stage": self.stage_index, "split": "dev",
                                "metrics": metrics})
        log.info("Epoch %d, step %d/%d: dev accuracy %.4f, macro-F1 %.4f", epoch, self.step, self.total_steps,
                 metrics["accuracy"], metrics["macro_f1"])
        self.last_eval_step = self.step
        if metrics[t.best_metric] > self.best[t.best_metric]:
            self.best = {**metrics, "epoch": epoch, "step": self.step}
            self.best_state = copy.deepcopy(self.student.state_dict())
            self.bad_evals = 0
        else:
            self.bad_evals += 1
            if t.early_stopping_patience and self.bad_evals >= t.early_stopping_patience:
                log.info("Early stop at step %d: no better dev %s in %d evaluations", self.step, t.best_metric,
                         self.bad_evals)
                self.stopped_early = True

    # --- checkpoints --------------------------------------------------------------------
    def _save(self, epoch: int, next_batch: int, permutation: torch.Tensor | None) -> None:
        if self.ckpt_path is None or (self.group is not None and not self.group.is_main):
            return
        step, path = self.step, str(self.ckpt_path)
        checkpointing.save(self.ckpt_path, {
            "fingerprint": self.fingerprint, "step": self.step, "epoch": epoch, "next_batch": next_batch,
            "permutation": permutation, "generator": self.generator.get_state(), "rng": checkpointing.rng_state(),
            "stage_index": self.stage_index, "stage_start_step": self.stage_start_step,
            "model": self.student.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
            "matches": [s.match_loss.state_dict() if s.match_loss else None for s in self.stages],
            "best": self.best, "best_state": self.best_state, "bad_evals": self.bad_evals,
            "stopped_early": self.stopped_early, "last_eval_step": self.last_eval_step,
        }, before_replace=lambda: self.sink.emit("checkpoint", {"step": step, "path": path}))

    def _restore(self, state: dict[str, Any]) -> tuple[int, int, torch.Tensor | None]:
        self.student.load_state_dict(state["model"])
        for stage, match_state in zip(self.stages, state["matches"], strict=True):
            if stage.match_loss is not None:
                stage.match_loss.load_state_dict(match_state)
        self.step = self.resumed_from = state["step"]
        self._start_stage(state["stage_index"], state["stage_start_step"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.generator.set_state(state["generator"])
        checkpointing.set_rng_state(state["rng"])
        parallel.reseed(self.group, self.config.seed, self.step)
        self.best, self.best_state = state["best"], state["best_state"]
        self.bad_evals, self.stopped_early = state["bad_evals"], state["stopped_early"]
        self.last_eval_step = state["last_eval_step"]
        return state["epoch"], state["next_batch"], state["permutation"]


def build_match_loss(config: ExperimentConfig, stage: StageConfig, student: torch.nn.Module,
                     teacher_info: dict[str, Any] | None, index: int) -> MatchLoss:
    """Parse and check a stage's matches against the real teacher and student (errors name the match)."""
    matches = parse_matches(stage.matches)
    try:
        validate_matches(matches, {**(teacher_info or {}), "has_attentions": True}, student, config.student.vocab)
        return MatchLoss(matches, student.hidden_size() if hasattr(student, "hidden_size") else None,
                         (teacher_info or {}).get("hidden_size"))
    except ConfigError as exc:
        if config.stages:
            raise ConfigError(f"{stage.name}: {exc.message}", field=f"stages.{index}.{exc.field or 'matches'}") from None
        raise


@torch.no_grad()
def predict_labels(model: torch.nn.Module, split: Encoded, device: torch.device, batch_size: int,
                   progress: Callable[[int], None] | None = None) -> torch.Tensor:
    """Arg-max predictions (N,), or multi-hot (N, C) for multi-label splits, on the CPU; mode is restored.

    `progress(n)` is called after each batch of n examples.
    """
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, len(split), max(1, batch_size * 2)):
        index = torch.arange(start, min(start + batch_size * 2, len(split)))
        ids, lengths, y, _ = split.batch(index, device)
        logits = model(ids, lengths)  # (b, C)
        out.append((logits > 0).float().cpu() if y.dim() == 2 else logits.argmax(dim=-1).cpu())
        if progress is not None:
            progress(len(index))
    model.train(was_training)
    return torch.cat(out)
