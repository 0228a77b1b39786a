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

import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from distill_core import augment_store, checkpointing, environment, parallel, storage, streaming
from distill_core.config import ExperimentConfig
from distill_core.embedding_init import fold_embeddings, initialise_embeddings
from distill_core.encoding import Encoded, build_encoder, load_splits  # noqa: F401  (bench, tests)
from distill_core.errors import ConfigError
from distill_core.evaluate import report_for
from distill_core.export import save_student
from distill_core.progress import Phases
from distill_core.run_parts import NullSink, Sink, resolve_device
from distill_core.seeding import seed_everything
from distill_core.size import compare, size_report
from distill_core.students import build_student
from distill_core.teacher_outputs import live_train_logits, load_teachers, teacher_predictions
from distill_core.trainer import Trainer, predict_labels
from distill_core.vocab import TeacherPieces
from distill_core.vocab_pruning import prune_student, split_ids

log = logging.getLogger(__name__)


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

        return run_finetune(config, sink, should_cancel, resume=resume, cache_dir=cache_dir, hub_cache=hub_cache)
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
    vocab_kind = None if config.student.vocab == "teacher" else config.student.vocab
    with phases.phase("reading", total=files + len(config.teacher.members()), unit="file") as progress:
        splits, vocab = streaming.plan_splits(config, vocab_kind, progress)  # every split streamed from disk
        teachers = load_teachers(config, device, labels, progress)
    teacher, tokenizer, teacher_info = teachers[0].model, teachers[0].tokenizer, teachers[0].info
    encoder = vocab if vocab is not None else TeacherPieces(tokenizer)  # the train split's, copies not counted
    unlabelled = {"train"} if live_train_logits(config, len(teachers)) else set()
    if "test" in splits:
        unlabelled.add("dev")  # judged on gold labels only; the teacher's report is on test
    with (parallel.teacher_cache_turn(group, cache_dir, config.output_dir) as shared_cache,
          streaming.data_root(shared_cache) as root):
        if config.augment.enabled:  # the copies go to disk a chunk of rows at a time (augment_store.py)
            with phases.phase("augmenting", total=2 * splits["train"].rows, unit="row", poll_cancel=True) as progress:
                copies = augment_store.copies_source(config, splits["train"], teachers[0], root, progress)
            if copies.rows:  # else every candidate repeated a text: the train split alone
                splits["augmented"] = copies
        encoded = streaming.encode_sources(config, splits, encoder, teachers, device, root,
                                           lambda: phases.check_cancel("teacher"), without_logits=unlabelled,
                                           phases=phases)
    if "augmented" in encoded:  # the teacher labels the copies
        encoded["train"] = augment_store.joined(encoded["train"], encoded.pop("augmented"), config.data.multi_label)
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
