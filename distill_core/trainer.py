"""The classifier trainer: its optimisation step, dev evaluation and batches inside the shared loop
(train_loop.py: stages, evaluations, checkpoints, early stopping), and the predictions it judges the student by.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from distill_core import parallel
from distill_core.bucketing import example_lengths, sampler_for
from distill_core.config import ExperimentConfig, StageConfig
from distill_core.encoding import Encoded
from distill_core.errors import ConfigError, TrainingError
from distill_core.evaluate import accuracy_and_macro_f1
from distill_core.losses import hard_bce, hard_ce, kd_losses
from distill_core.matches import MatchLoss, parse_matches, validate_matches
from distill_core.optimizers import apply_gradients
from distill_core.run_parts import Sink, check_finite
from distill_core.schedules import temperature_schedules, weight_schedules
from distill_core.student_base import length_mask
from distill_core.teachers import label_order
from distill_core.train_loop import AMP_DTYPES, BatchAt, TrainLoop

log = logging.getLogger(__name__)


@dataclass
class Stage:
    """A resolved stage: its settings and matches (with their projections)."""

    config: StageConfig
    match_loss: MatchLoss | None

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def epochs(self) -> int:
        return self.config.epochs

    @property
    def learning_rate(self) -> float:
        return self.config.learning_rate


@dataclass
class Batch:
    """One forward pass of the student on a training batch, what its loss is computed from."""

    student: torch.Tensor  # (b, C) student logits
    teacher: torch.Tensor | None  # (b, C) KD targets in dataset label order; None: neither cached nor live
    labels: torch.Tensor  # (b,) class indices or (b, C) multi-hot
    match_terms: dict[str, torch.Tensor]  # the intermediate matches' terms (empty without matches)
    share: dict[str, float]  # this rank's share of each mean under data parallel; empty in one process


class Trainer(TrainLoop):
    """A classifier run's step (KD, hard-label and match terms; data parallel), evaluation and batches.

    With intermediate matches the teacher runs on every batch (output_hidden_states/attentions);
    without them its cached logits are all the loop needs.
    """

    higher_is_better = True  # train.best_metric: accuracy or macro-F1

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
        self.best_metric = t.best_metric
        self.group = parallel.current()  # data-parallel ranks (parallel.py), None in one process
        stage_configs = config.stage_configs()
        self.match_losses = [build_match_loss(config, sc, student, teacher_info, i).to(device) if sc.matches else None
                             for i, sc in enumerate(stage_configs)]
        self.stages = [Stage(sc, m) for sc, m in zip(stage_configs, self.match_losses, strict=True)]
        self._setup_loop()
        if teacher is not None and any(m is not None and m.needs_attentions for m in self.match_losses):
            teacher.set_attn_implementation("eager")  # SDPA computes no attention maps to compare
        self.scaler = torch.amp.GradScaler("cuda", enabled=t.amp == "fp16")
        # Similar lengths per batch (bucketing.py); its batches depend only on (seed, epoch), so resuming needs
        # just the epoch and position the checkpoint already holds.
        self.sampler = sampler_for(t.bucket_by_length, example_lengths(self.train_set), t.batch_size, config.seed)
        multi = config.data.multi_label
        self.kd_loss_fn = kd_losses.get("bce" if multi and config.kd.loss in ("kl", "ce") else config.kd.loss)
        self.hard_loss_fn = hard_bce if multi else hard_ce
        self.temperature_fn = temperature_schedules.get(config.kd.temperature_schedule)
        self.forwards: dict[int, torch.nn.Module] = {}  # stage index -> its (DDP-wrapped) parallel.Forward

    @property
    def train_lengths(self) -> torch.Tensor:
        """(N,) every train example's length (data parallel weights its terms by them): an in-memory split
        keeps them; a token store reads them once from its offsets (4 bytes a row)."""
        if self._train_lengths is None:
            lengths = self.train_set.lengths
            self._train_lengths = torch.as_tensor(lengths() if callable(lengths) else lengths)
        return self._train_lengths

    def _epoch_batches(self, epoch: int, permutation: torch.Tensor | None
                       ) -> tuple[torch.Tensor | None, int, BatchAt]:
        """With bucketing, the sampler's batches of this epoch, built a pool at a time (bucketing.py)."""
        if self.sampler is None:
            return super()._epoch_batches(epoch, permutation)
        sampler = self.sampler
        return None, len(sampler), lambda i: torch.from_numpy(sampler.batch(epoch, i))

    def _restore_extras(self, state: dict[str, Any]) -> None:
        parallel.reseed(self.group, self.config.seed, self.step)

    def _optimisation_step(self, group: list[torch.Tensor], epoch: int) -> None:
        """One optimiser step over `group` (grad_accumulation batches of train indices), gradients averaged."""
        t, stage = self.config.train, self.stages[self.stage_index]
        self.step += 1
        progress = (self.step - 1) / max(1, self.total_steps)
        hard_w, kd_w = self._loss_weights(stage.config, progress)
        self.student.train()
        self.optimizer.zero_grad(set_to_none=True)
        sums: dict[str, float] = {}
        amp = torch.autocast(self.device.type, dtype=AMP_DTYPES.get(t.amp, torch.bfloat16), enabled=t.amp != "off")
        forward = self._forward(stage)
        for n, index in enumerate(group):
            outputs = self._forward_batch(forward, stage, index, amp, sync=n + 1 == len(group))
            loss, terms = self._loss_terms(stage, outputs, progress, hard_w, kd_w)
            self.scaler.scale(loss / len(group)).backward()
            for name, value in terms.items():
                sums[name] = sums.get(name, 0.0) + float(value.detach()) / len(group)
        lr = apply_gradients(self.optimizer, self.scaler, self.scheduler, self.student.parameters(), t.grad_clip)
        if self.progress is not None:
            self.progress.update_to(self.step)
        if self.step % t.log_every == 0 or self.step == self.total_steps:
            self._report_step(epoch, stage, sums, {"lr": lr, "kd_weight": kd_w, "hard_weight": hard_w})

    def _loss_weights(self, sc: StageConfig, progress: float) -> tuple[float, float]:
        """(hard-label weight, KD weight) at `progress`: alpha and 1 - alpha (or kd_weight), times their schedules."""
        kd = self.config.kd
        hard_w = sc.alpha * weight_schedules.get(kd.hard_weight_schedule)(progress)
        kd_w = (1.0 - sc.alpha if sc.kd_weight is None else sc.kd_weight) * weight_schedules.get(
            kd.kd_weight_schedule)(progress)
        return hard_w, kd_w

    def _forward_batch(self, forward: torch.nn.Module, stage: Stage, index: torch.Tensor, amp: torch.autocast, *,
                       sync: bool) -> Batch:
        """The student (and the matches) on this rank's part of the batch `index`, with the KD targets.

        `sync`: the last batch of the step, whose backward averages the gradients across ranks.
        """
        share: dict[str, float] = {}
        width = None
        if self.group is not None:  # this rank's slice of the global batch, and its share of each mean
            local, stand_in = parallel.shard(index, self.group)
            share = parallel.shares(self.train_lengths, index, local, stand_in, parallel.term_kinds(stage.match_loss))
            width = int(self.train_lengths[index].max())
            index = local
        ids, lengths, y, z_t = self.train_set.batch(index, self.device, width if share else None)
        with amp, parallel.no_sync(forward, sync):
            z_s, match_terms, live_logits = forward(ids, lengths)
            if z_t is None and live_logits is not None:  # KD targets from the live teacher (live_train_logits)
                z_t = live_logits if self.teacher_order is None else live_logits[:, self.teacher_order]
        return Batch(z_s, z_t, y, match_terms, share)

    def _loss_terms(self, stage: Stage, b: Batch, progress: float, hard_w: float,
                    kd_w: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(loss to back-propagate, every term to report): w_hard * hard + w_kd * kd(T) + the matches' terms."""
        kd, sc = self.config.kd, stage.config
        if b.teacher is None:
            raise TrainingError(f"Stage {sc.name!r} has no intermediate matches, so it needs the train split's "
                                f"precomputed teacher logits, and there are none.")
        z_s, z_t = b.student.float(), b.teacher.float()  # (b, C)
        T = self.temperature_fn(sc.temperature, kd.temperature_final or sc.temperature, progress, z_s, z_t,
                                kd.schedule_beta, kd.schedule_gamma)
        terms = {"kd_loss": self.kd_loss_fn(z_s, z_t, T, kd.t2_scaling), "hard_loss": self.hard_loss_fn(z_s, b.labels)}
        terms["loss"] = hard_w * terms["hard_loss"] + kd_w * terms["kd_loss"]
        if b.match_terms:
            terms.update({k: v.float() for k, v in b.match_terms.items()})
            terms["intermediate_loss"] = sum(terms[k] for k in b.match_terms)
            terms["loss"] = terms["loss"] + terms["intermediate_loss"]
        check_finite(terms, self.step)
        terms["temperature"] = torch.as_tensor(T).float().mean()
        if b.share:  # world * share: DDP's gradient average is then the gradient of the whole batch's mean
            return parallel.weighted(terms, b.match_terms, b.share, hard_w, kd_w, self.group.world)
        return terms["loss"], terms

    def _report_step(self, epoch: int, stage: Stage, sums: dict[str, float], extra: dict[str, float]) -> None:
        """The step event: each term's mean over the accumulated batches (over every rank), the rate and weights."""
        if self.group is not None:
            sums = parallel.reduced_terms(sums, list(stage.match_loss.keys()) if stage.match_loss else [],
                                          extra["hard_weight"], extra["kd_weight"], self.group, self.device)
        self.sink.emit("step", {"step": self.step, "epoch": epoch, "stage": self.stage_index,
                                "metrics": {**sums, **extra}})

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
        self._judge(metrics, epoch)


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
