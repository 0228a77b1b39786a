"""One causal-LM distillation run (config.kind "lm_distill"), reported through the distiller's sink protocol.

    run_lm(config, sink, should_cancel, resume=True, cache_dir=None) -> results

Phases: reading, tokenising, teacher (offline top-k, skipped on a cache hit), training, evaluating,
teacher_test, size, export. Events as in distiller.py: start, step {"loss", "distill_loss",
"sft_loss", "lr"}, eval (dev: {"perplexity", "nll", "agreement", "distill_loss"}; test once for the
best student), checkpoint, export, result. The best student is the one with the lowest dev perplexity.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from distill_core import checkpointing, environment, hub, storage
from distill_core.config import ExperimentConfig
from distill_core.errors import ConfigError
from distill_core.lm import topk_cache
from distill_core.lm.data import LMSplit, read_rows, tokenise
from distill_core.lm.evaluate import generate, generation_speed, score
from distill_core.lm.models import build_student, load_causal_lm, pad_id
from distill_core.lm.trainer import LMTrainer
from distill_core.progress import Phases
from distill_core.run_parts import hold_out_dev
from distill_core.seeding import seed_everything
from distill_core.size import count_parameters, serialized_bytes

log = logging.getLogger(__name__)
EXPERIMENT_FILE = "experiment.json"  # config.json beside the weights is the model's own (save_pretrained)


def run_lm(config: ExperimentConfig, sink: Any = None, should_cancel: Callable[[], bool] | None = None, *,
           resume: bool = True, cache_dir: str | Path | None = None,
           hub_cache: str | Path | None = None) -> dict[str, Any]:
    """Distil the causal-LM teacher into the student of `config.lm`; return the results dict."""
    from distill_core.run_parts import NullSink, resolve_device

    sink = sink or NullSink()
    config = copy.deepcopy(config)
    o = config.lm
    student_path = o.student_path
    if o.student_source == "checkpoint" and hub.is_hub(student_path):
        student_path = str(hub.resolve(hub.parse(student_path, "lm.student_path"), hub_cache, "lm.student_path").path)
    started = time.monotonic()
    seed_everything(config.seed)
    device = resolve_device(config.train.device)
    if config.train.amp == "fp16" and device.type != "cuda":
        raise ConfigError("train.amp='fp16' needs a CUDA device; use 'bf16' or 'off' on the CPU.", field="train.amp")
    env = environment.record(config.seed, device)
    phases = Phases(sink, should_cancel)
    files = [("train", config.data.train), ("dev", config.data.dev), ("test", config.data.test)]
    files = [(name, path) for name, path in files if path]
    with phases.phase("reading", total=len(files) + 1, unit="file") as progress:
        rows = {}
        for name, path in files:
            rows[name] = read_rows(path, o)
            progress.advance()
        teacher, tokenizer = load_causal_lm(config.teacher.path, device)
        progress.advance()
    pad, eos = pad_id(tokenizer), tokenizer.eos_token_id
    with phases.phase("tokenising", total=sum(len(r) for r in rows.values()), poll_cancel=True) as progress:
        splits: dict[str, LMSplit] = {}
        for name, split_rows in rows.items():
            splits[name] = tokenise(split_rows, tokenizer, config.data.max_length, name)
            progress.advance(len(split_rows))
    if "dev" not in splits:
        splits["dev"], splits["train"] = hold_out_dev(splits["train"], config.seed)
    test_name = "test" if "test" in splits else "dev"

    seed_everything(config.seed)
    student, _, student_info = build_student(o, teacher, tokenizer, device, student_path)

    topk: dict[str, topk_cache.TopK] = {}
    cache_hits: dict[str, bool] = {}
    teacher_started = time.monotonic()
    if o.mode == "offline":
        cached = ["train", "dev"] + (["test"] if test_name == "test" else [])
        with phases.phase("teacher", total=sum(len(splits[n]) for n in cached), poll_cancel=True) as progress:
            for name in cached:
                split = splits[name]
                key = topk_cache.key(config.teacher.path, split, o.top_k) if cache_dir is not None else ""
                topk[name], cache_hits[name] = topk_cache.get_or_compute(cache_dir, key, lambda s=split: topk_cache.compute(
                    teacher, s, o.top_k, pad, device, config.train.batch_size * 2, progress.advance))
    teacher_seconds = time.monotonic() - teacher_started

    trainer = LMTrainer(config, student, teacher, pad, eos, splits, topk, device, sink, should_cancel)
    train_started = time.monotonic()
    with phases.phase("training", total=trainer.total_steps, unit="step") as trainer.progress:
        trainer.train(resume)
    trainer.progress = None
    train_seconds = time.monotonic() - train_started
    student.load_state_dict(trainer.best_state)

    test = splits[test_name]
    batch = config.train.batch_size
    with phases.phase("evaluating", total=len(test), poll_cancel=True) as progress:
        student_report = score(student, test, pad, device, batch, lambda i, x, a, m: trainer.targets(test_name, i, x, a, m),
                               trainer.token_loss, progress.advance)
    with phases.phase("teacher_test", total=len(test), poll_cancel=True) as progress:
        teacher_report = score(teacher, test, pad, device, batch, advance=progress.advance)
        prompts = ([torch.tensor(tokenizer(p)["input_ids"], dtype=torch.long) for p in o.sample_prompts]
                   or [ids[:start] for ids, start in zip(test.ids[: o.samples], test.starts[: o.samples], strict=True)])
        texts = [tokenizer.decode(p, skip_special_tokens=False) for p in prompts]
        samples = [{"prompt": text, "teacher": t, "student": s} for text, t, s in zip(
            texts, generate(teacher, tokenizer, prompts, device, o.sample_max_new_tokens),
            generate(student, tokenizer, prompts, device, o.sample_max_new_tokens), strict=True)]
    if test_name == "test":
        sink.emit("eval", {"step": trainer.step, "epoch": trainer.best.get("epoch"), "split": "test",
                           "metrics": student_report})

    with phases.phase("size", total=2, unit="model") as progress:
        vocab = len(tokenizer)
        student_size = {**count_parameters(student), "bytes": serialized_bytes(student),
                        **generation_speed(student, vocab, device)}
        progress.advance()
        phases.check_cancel("size")
        teacher_size = {**count_parameters(teacher), "bytes": _weights_bytes(config.teacher.path),
                        **generation_speed(teacher, vocab, device)}
    export_dir = None
    if config.output_dir:
        with phases.phase("export", unit="file"):
            sink.emit("export", {"path": str(config.output_dir)})  # a sink may refuse: nothing below is written
            with storage.writing(config.output_dir, "output directory"):
                out = Path(config.output_dir)
                out.mkdir(parents=True, exist_ok=True)
                student.save_pretrained(out)
                tokenizer.save_pretrained(out)
                (out / EXPERIMENT_FILE).write_text(config.to_json(), encoding="utf-8")
                environment.write(out, env)
            export_dir = str(out)
        checkpointing.remove(checkpointing.checkpoint_path(config.output_dir))
    results = {
        "kind": "lm_distill",
        "mode": o.mode,
        "loss": o.loss,
        "test_split": test_name,
        "student": student_report,
        "teacher": teacher_report,
        "samples": samples,
        "size": {"student": student_size, "teacher": teacher_size,
                 "compression": round(teacher_size["parameters"] / max(1, student_size["parameters"]), 4),
                 "speedup": round(student_size["tokens_per_s_batch_8"] / teacher_size["tokens_per_s_batch_8"], 4)
                 if teacher_size["tokens_per_s_batch_8"] else None},
        "student_info": student_info,
        "best_dev": {k: trainer.best.get(k) for k in ("perplexity", "agreement", "distill_loss", "epoch", "step")},
        "export_dir": export_dir,
        "steps": trainer.step,
        "stopped_early": trainer.stopped_early,
        "resumed_from": trainer.resumed_from,
        "on_policy_batches": trainer.sampled_batches,
        "teacher_cache_hits": cache_hits,
        "examples": {name: len(split) for name, split in splits.items()},
        "response_tokens": {name: split.response_tokens() for name, split in splits.items()},
        "seconds": {"teacher_inference": round(teacher_seconds, 3), "training": round(train_seconds, 3),
                    "total": round(time.monotonic() - started, 3)},
    }
    sink.emit("result", results)
    return results


def _weights_bytes(path: str | Path) -> int:
    files = [p for p in Path(path).iterdir() if p.suffix in (".safetensors", ".bin") and p.is_file()]
    return sum(p.stat().st_size for p in files)
