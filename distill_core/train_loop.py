"""The training loop every run kind shares: stages, epochs, gradient-accumulation groups, evaluations,
checkpoints, early stopping, cancel and exact resume.

A trainer (trainer.py for classifiers, lm/trainer.py for causal LMs) subclasses TrainLoop, builds its
`stages` (each with `name`, `epochs`, `learning_rate`) and `match_losses` (one per stage, None without
matches), calls `_setup_loop()` and supplies the kind-specific parts:

    _optimisation_step(group, epoch)   one optimiser step over a group of batches of train indices
    _evaluate(epoch)                   the dev evaluation; it calls `_judge` to keep the best student
    _epoch_batches(epoch, permutation) this epoch's batches (default: slices of a seeded permutation)
    _start_extras() / _state_extras() / _restore_extras(state)   what the start event and checkpoint add

Early stopping: after `early_stopping_patience` evaluations without a better dev metric the stage stops at
once; the run goes on with the next stage (a fresh optimiser and best) or ends after the last one.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable
from typing import Any

import torch

from distill_core import checkpointing, parallel
from distill_core.errors import RunCancelled
from distill_core.optimizers import make_optimizer
from distill_core.schedules import lr_factor

log = logging.getLogger(__name__)
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
BatchAt = Callable[[int], torch.Tensor]  # batch i of the epoch -> its (b,) train indices


class TrainLoop:
    """The optimisation loop of one run; subclasses give the step, the evaluation and the batches."""

    config: Any
    student: torch.nn.Module
    device: torch.device
    sink: Any
    should_cancel: Callable[[], bool] | None
    train_set: Any
    stages: list[Any]
    match_losses: list[Any]
    scaler: Any
    best_metric: str
    higher_is_better: bool
    group: parallel.Group | None = None  # data-parallel ranks; None in one process

    def _setup_loop(self) -> None:
        """Step counts, the data-order generator and the loop's state, from `stages` and the train split."""
        config, t = self.config, self.config.train
        self.batches_per_epoch = math.ceil(len(self.train_set) / t.batch_size)
        self.steps_per_epoch = math.ceil(self.batches_per_epoch / t.grad_accumulation)
        self.total_steps = self.steps_per_epoch * sum(stage.epochs for stage in self.stages)
        if t.max_steps is not None:
            self.total_steps = min(self.total_steps, t.max_steps)
        self.generator = torch.Generator().manual_seed(config.seed)  # data order
        self.step = self.stage_index = self.stage_start_step = 0
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: Any = None
        self.match_loss: Any = None
        self.params: list[torch.nn.Parameter] = []
        self._reset_best()
        self.stopped_early = False
        self.resumed_from: int | None = None
        self.progress: Any = None  # the run's "training" phase (progress.Phase), advanced every step (throttled)
        self.ckpt_path = checkpointing.checkpoint_path(config.output_dir) if config.output_dir else None
        self.fingerprint = checkpointing.fingerprint(config.to_dict())

    def _reset_best(self) -> None:
        """Each stage picks its own best student; the last stage's is the run's."""
        self.best: dict[str, Any] = {self.best_metric: -1.0 if self.higher_is_better else math.inf}
        self.best_state = copy.deepcopy(self.student.state_dict())
        self.bad_evals = 0
        self.last_eval_step: int | None = None

    def _start_stage(self, index: int, start_step: int | None = None) -> None:
        """A fresh optimiser (student and the stage's projections) and learning-rate schedule over the stage's
        steps, cut by max_steps."""
        stage, t = self.stages[index], self.config.train
        self.stage_index, self.match_loss = index, self.match_losses[index]
        self.stage_start_step = self.step if start_step is None else start_step
        self.params = list(self.student.parameters()) + (list(self.match_loss.parameters()) if self.match_loss else [])
        self.optimizer = make_optimizer(self.config, self.params, stage.learning_rate)
        steps = min(self.steps_per_epoch * stage.epochs, self.total_steps - self.stage_start_step)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer,
                                                           lr_factor(t.lr_schedule, t.warmup_ratio, steps))

    # --- the loop -------------------------------------------------------------------------
    def train(self, resume: bool) -> None:
        """Run every stage's epochs from the start (or the checkpoint, with `resume`) to total_steps."""
        epoch, next_batch, permutation = self._begin(resume)
        while self.step < self.total_steps:
            last = self.stage_index + 1 == len(self.stages)
            if self._stage_done(next_batch):
                if last:
                    break
                self._start_stage(self.stage_index + 1)
                self._reset_best()
                self.stopped_early = False
                continue
            permutation, n_batches, batch_at = self._epoch_batches(epoch, permutation)
            b = self._run_batches(epoch, next_batch, n_batches, batch_at, permutation)
            if b >= n_batches and not self.config.train.eval_every:
                self._evaluate(epoch)
            if self.stopped_early and not last:  # skip the rest of this stage's epochs: the next starts on time
                stage_end = self.stage_start_step + self.steps_per_epoch * self.stages[self.stage_index].epochs
                self.step = max(self.step, stage_end)
            epoch, next_batch, permutation = epoch + 1, 0, None
            self._save(epoch, 0, None)
            if self.stopped_early and last:
                break
        if self.last_eval_step != self.step:  # stopped by max_steps mid-epoch: judge the last student too
            self._evaluate(epoch - 1)

    def _begin(self, resume: bool) -> tuple[int, int, torch.Tensor | None]:
        """Restore the checkpoint (or start stage 0) and emit `start`; (epoch, next batch, permutation)."""
        position: tuple[int, int, torch.Tensor | None] = (1, 0, None)
        state = checkpointing.load(self.ckpt_path, self.fingerprint) if resume and self.ckpt_path else None
        if state is not None:
            position = self._restore(state)
        else:
            self._start_stage(0)
        self.sink.emit("start", {"total_steps": self.total_steps, "steps_per_epoch": self.steps_per_epoch,
                                 "train_examples": len(self.train_set), "device": str(self.device),
                                 "resumed_from": self.resumed_from, "stages": [s.name for s in self.stages],
                                 **self._start_extras()})
        if self.progress is not None:
            self.progress.resume_at(self.step)
        return position

    def _stage_done(self, next_batch: int) -> bool:
        """The current stage ran its epochs, or stopped early at an epoch's end."""
        epochs_done = (self.step - self.stage_start_step) // self.steps_per_epoch
        return epochs_done >= self.stages[self.stage_index].epochs or (self.stopped_early and next_batch == 0)

    def _run_batches(self, epoch: int, b: int, n_batches: int, batch_at: BatchAt,
                     permutation: torch.Tensor | None) -> int:
        """Optimisation steps over the epoch's batches from `b` on, grad_accumulation batches a step, with their
        evaluations, checkpoints and cancel checks; returns the next batch."""
        t = self.config.train
        while b < n_batches and self.step < self.total_steps and not self.stopped_early:
            group = [batch_at(i) for i in range(b, min(b + t.grad_accumulation, n_batches))]
            b += len(group)
            self._optimisation_step(group, epoch)
            if t.eval_every and self.step % t.eval_every == 0:
                self._evaluate(epoch)
            if self.step % t.checkpoint_every == 0:
                self._save(epoch, b, permutation)
            if parallel.any_rank(self.should_cancel is not None and self.should_cancel(), self.group, self.device):
                self._save(epoch, b, permutation)
                raise RunCancelled(f"Cancelled at step {self.step}.")
        return b

    def _epoch_batches(self, epoch: int, permutation: torch.Tensor | None
                       ) -> tuple[torch.Tensor | None, int, BatchAt]:
        """(permutation, batches, batch_at): a seeded permutation of the train split (the checkpoint's one on
        resume), sliced as needed, so no list of N/b tensors is built."""
        order = torch.randperm(len(self.train_set), generator=self.generator) if permutation is None else permutation
        size = self.config.train.batch_size
        return order, self.batches_per_epoch, lambda i: order[i * size: (i + 1) * size]

    def _judge(self, metrics: dict[str, Any], epoch: int) -> None:
        """Keep the student if `metrics` beat the stage's best; else count towards early stopping."""
        t = self.config.train
        self.last_eval_step = self.step
        value, best = metrics[self.best_metric], self.best[self.best_metric]
        if value > best if self.higher_is_better else value < best:
            self.best = {**metrics, "epoch": epoch, "step": self.step}
            self.best_state = copy.deepcopy(self.student.state_dict())
            self.bad_evals = 0
            return
        self.bad_evals += 1
        if t.early_stopping_patience and self.bad_evals >= t.early_stopping_patience:
            log.info("Early stop at step %d: no better dev %s in %d evaluations", self.step, self.best_metric,
                     self.bad_evals)
            self.stopped_early = True

    # --- what each kind supplies -----------------------------------------------------------
    def _optimisation_step(self, group: list[torch.Tensor], epoch: int) -> None:
        raise NotImplementedError

    def _evaluate(self, epoch: int) -> None:
        raise NotImplementedError

    def _start_extras(self) -> dict[str, Any]:
        return {}

    def _state_extras(self) -> dict[str, Any]:
        return {}

    def _restore_extras(self, state: dict[str, Any]) -> None:
        """Called last in `_restore`, after the RNG states are set."""

    # --- checkpoints ----------------------------------------------------------------------
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
            "matches": [m.state_dict() if m is not None else None for m in self.match_losses],
            "best": self.best, "best_state": self.best_state, "bad_evals": self.bad_evals,
            "stopped_early": self.stopped_early, "last_eval_step": self.last_eval_step, **self._state_extras(),
        }, before_replace=lambda: self.sink.emit("checkpoint", {"step": step, "path": path}))

    def _restore(self, state: dict[str, Any]) -> tuple[int, int, torch.Tensor | None]:
        self.student.load_state_dict(state["model"])
        for match_loss, match_state in zip(self.match_losses, state["matches"], strict=True):
            if match_loss is not None:
                match_loss.load_state_dict(match_state)
        self.step = self.resumed_from = state["step"]
        self._start_stage(state["stage_index"], state["stage_start_step"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.generator.set_state(state["generator"])
        checkpointing.set_rng_state(state["rng"])
        self.best, self.best_state = state["best"], state["best_state"]
        self.bad_evals, self.stopped_early = state["bad_evals"], state["stopped_early"]
        self.last_eval_step = state["last_eval_step"]
        self._restore_extras(state)
        return state["epoch"], state["next_batch"], state["permutation"]
