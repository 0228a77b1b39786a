"""The causal-LM training loop: token-level distillation with an optional SFT term, offline/online/on-policy.

Per optimisation step, for each batch of its gradient-accumulation group:

    logits_S = student(batch)[:, :-1][loss_mask]                       (n, V) response positions only
    teacher  = cached top-k (offline) or teacher(batch) live (online, on-policy)
    loss     = distill_weight * f_kd(p) * token_loss(logits_S [at the top-k ids], teacher, T(p), beta)
             + sft_weight * f_hard(p) * CE(logits_S, next tokens)
             + sum of the weighted hidden-state match terms (config.matches; lm/matches.py)

The classifier's schedules apply with p = (step - 1) / total steps: T(p) by kd.temperature_schedule
from lm.temperature to kd.temperature_final (constant, linear, cosine), f_kd and f_hard by
kd.kd_weight_schedule and kd.hard_weight_schedule; the learning rate by train.lr_schedule after warm-up.
Stages (lm/stages.py) set temperature, distill_weight, sft_weight and the matches per stage, each with a
fresh optimiser and learning-rate schedule and its own best student, as the classifier's stages do.

On-policy (GKD): with probability lambda_on_policy (a seeded draw, part of the checkpoint) a batch's
responses are replaced by continuations sampled from the student, then scored by the teacher live.
The loop itself (stages, epochs, evaluations, checkpoints, early stopping, resume) is train_loop.py's, shared
with the classifier. Checkpoints hold model, optimiser, scheduler, data order and every RNG: N steps straight
equal k steps, a resume, and N - k more, bitwise on the CPU.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch

from distill_core.config import ExperimentConfig
from distill_core.errors import ConfigError
from distill_core.lm.data import LMSplit, collate
from distill_core.lm.evaluate import score
from distill_core.lm.losses import gather_topk, sft_cross_entropy, token_losses
from distill_core.lm.matches import build_match_loss, match_terms
from distill_core.lm.stages import LMStage, lm_stages
from distill_core.lm.topk_cache import TopK
from distill_core.optimizers import apply_gradients
from distill_core.schedules import temperature_schedules, weight_schedules
from distill_core.train_loop import AMP_DTYPES, TrainLoop

log = logging.getLogger(__name__)


class LMTrainer(TrainLoop):
    """A causal-LM run's step (token distillation, SFT, matches, on-policy samples) and dev perplexity."""

    best_metric, higher_is_better = "perplexity", False

    def __init__(self, config: ExperimentConfig, student: torch.nn.Module, teacher: torch.nn.Module, pad: int,
                 eos: int | None, splits: dict[str, LMSplit], topk: dict[str, TopK], device: torch.device,
                 sink: Any, should_cancel: Callable[[], bool] | None):
        self.config, self.student, self.teacher, self.pad, self.eos = config, student, teacher, pad, eos
        self.splits, self.topk, self.device, self.sink, self.should_cancel = splits, topk, device, sink, should_cancel
        o, t = config.lm, config.train
        self.loss_fn = token_losses.get(o.loss)
        self.train_set = splits["train"]
        self.stages = lm_stages(config)
        # A stage's matches' projections are trained with the student: one optimiser, one clip, one checkpoint.
        self.match_losses = [_match_loss(config, i, stage, student, teacher, device)
                             for i, stage in enumerate(self.stages)]
        self._setup_loop()
        self.policy_generator = torch.Generator().manual_seed(config.seed + 1)  # which batches are on-policy
        self.scaler = torch.amp.GradScaler(device.type, enabled=t.amp == "fp16" and device.type == "cuda")
        self.sampled_batches = 0

    # --- teacher targets -------------------------------------------------------------------
    def targets(self, split: str, index: list[int] | None, input_ids: torch.Tensor, attention: torch.Tensor,
                mask: torch.Tensor, live: Any = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Teacher logits at the response positions: cached top-k (n, k) with ids (n, k), or live (n, V) and None.

        `live`: the teacher's output on this batch when the matches already ran it.
        """
        if index is not None and split in self.topk:
            values, ids = self.topk[split].rows(index)
            return values.to(self.device), ids.to(self.device)
        logits = (live if live is not None else self.teacher_forward(input_ids, attention)).logits  # (B, T, V)
        return logits[:, :-1][mask].float(), None

    @torch.no_grad()
    def teacher_forward(self, input_ids: torch.Tensor, attention: torch.Tensor, hidden: bool = False) -> Any:
        return self.teacher(input_ids=input_ids, attention_mask=attention, output_hidden_states=hidden)

    def token_loss(self, z_s: torch.Tensor, z_t: torch.Tensor, T: float | None = None) -> torch.Tensor:
        """The token loss at temperature T (default lm.temperature, the one dev and test are scored at)."""
        return self.loss_fn(z_s, z_t, self.config.lm.temperature if T is None else T, self.config.lm.beta)

    def schedule(self) -> tuple[float, float, float]:
        """(T, distill weight, SFT weight) of the current step: the stage's values by the kd section's schedules."""
        stage, kd = self.stages[self.stage_index], self.config.kd
        progress = (self.step - 1) / max(1, self.total_steps)
        T = temperature_schedules.get(kd.temperature_schedule)(
            stage.temperature, kd.temperature_final or stage.temperature, progress, None, None, 0.0, 0.0)
        return (T, stage.distill_weight * weight_schedules.get(kd.kd_weight_schedule)(progress),
                stage.sft_weight * weight_schedules.get(kd.hard_weight_schedule)(progress))

    # --- the loop's kind-specific parts (train_loop.py) -------------------------------------
    def _start_extras(self) -> dict[str, Any]:
        return {"train_response_tokens": self.train_set.response_tokens()}

    def _state_extras(self) -> dict[str, Any]:
        return {"policy_generator": self.policy_generator.get_state(), "sampled_batches": self.sampled_batches}

    def _restore_extras(self, state: dict[str, Any]) -> None:
        self.policy_generator.set_state(state["policy_generator"])
        self.sampled_batches = state["sampled_batches"]

    def _optimisation_step(self, group: list[torch.Tensor], epoch: int) -> None:
        from distill_core.run_parts import check_finite

        t, o = self.config.train, self.config.lm
        self.step += 1
        self.student.train()
        self.optimizer.zero_grad(set_to_none=True)
        sums: dict[str, float] = {}
        T, distill_w, sft_w = self.schedule()
        amp = torch.autocast(self.device.type, dtype=AMP_DTYPES.get(t.amp, torch.bfloat16), enabled=t.amp != "off")
        for index in (batch.tolist() for batch in group):
            sampled = o.mode == "on_policy" and float(torch.rand(1, generator=self.policy_generator)) < o.lambda_on_policy
            if sampled:
                ids, starts = self._sample(index)
                self.sampled_batches += 1
            else:
                ids, starts = [self.train_set.ids[i] for i in index], [self.train_set.starts[i] for i in index]
            input_ids, attention, mask = (x.to(self.device) for x in collate(ids, starts, self.pad))
            matched = self.match_loss is not None
            with amp:
                out = self.student(input_ids=input_ids, attention_mask=attention, output_hidden_states=matched)
            z_s = out.logits[:, :-1][mask].float()  # (n, V)
            live = self.teacher_forward(input_ids, attention, hidden=True) if matched else None
            z_t, top_ids = self.targets("train", None if sampled else index, input_ids, attention, mask, live)
            gold = input_ids[:, 1:][mask]  # (n,)
            with torch.set_grad_enabled(sft_w > 0):  # logged either way; no backward pass through a 0 weight
                sft = sft_cross_entropy(z_s, gold)
            terms = {"distill_loss": self.token_loss(gather_topk(z_s, top_ids) if top_ids is not None else z_s, z_t, T),
                     "sft_loss": sft}
            terms["loss"] = distill_w * terms["distill_loss"] + sft_w * terms["sft_loss"]
            if matched:
                with amp:
                    per_match = match_terms(self.match_loss, out, live, attention, mask)
                terms.update({k: v.float() for k, v in per_match.items()})
                terms["intermediate_loss"] = sum(terms[k] for k in per_match)
                terms["loss"] = terms["loss"] + terms["intermediate_loss"]
            check_finite(terms, self.step)
            self.scaler.scale(terms["loss"] / len(group)).backward()
            for name, value in terms.items():
                sums[name] = sums.get(name, 0.0) + float(value.detach()) / len(group)
        lr = apply_gradients(self.optimizer, self.scaler, self.scheduler, self.params, t.grad_clip)
        if self.progress is not None:
            self.progress.update_to(self.step)
        if self.step % t.log_every == 0 or self.step == self.total_steps:
            self.sink.emit("step", {"step": self.step, "epoch": epoch, "stage": self.stage_index,
                                    "metrics": {**sums, "temperature": T, "lr": lr, "distill_weight": distill_w,
                                                "sft_weight": sft_w,
                                                "on_policy_batches": self.sampled_batches}})

    @torch.no_grad()
    def _sample(self, index: list[int]) -> tuple[list[torch.Tensor], list[int]]:
        """Each example's prompt followed by a continuation sampled from the student (cut after EOS)."""
        o = self.config.lm
        prompts = [self.train_set.ids[i][: self.train_set.starts[i]] for i in index]
        width = max(len(p) for p in prompts)
        left = torch.full((len(prompts), width), self.pad, dtype=torch.long)  # (B, P) left-padded for generation
        attention = torch.zeros_like(left)
        for b, p in enumerate(prompts):
            left[b, width - len(p):], attention[b, width - len(p):] = p, 1
        self.student.eval()
        out = self.student.generate(left.to(self.device), attention_mask=attention.to(self.device), do_sample=True,
                                    temperature=o.sample_temperature, top_k=0, top_p=1.0,
                                    max_new_tokens=o.max_new_tokens, pad_token_id=self.pad)  # (B, P + new)
        self.student.train()
        ids, starts = [], []
        for b, p in enumerate(prompts):
            new = out[b, width:].cpu()
            if self.eos is not None and (new == self.eos).any():
                new = new[: int((new == self.eos).nonzero()[0]) + 1]
            ids.append(torch.cat([p, new]))
            starts.append(max(1, len(p)))
        return ids, starts

    def _evaluate(self, epoch: int) -> None:
        """Dev perplexity, agreement and distillation loss; keep the student with the lowest perplexity."""
        t = self.config.train
        metrics = score(self.student, self.splits["dev"], self.pad, self.device, t.batch_size,
                        lambda i, x, a, m: self.targets("dev", i, x, a, m), self.token_loss)
        self.sink.emit("eval", {"step": self.step, "epoch": epoch, "stage": self.stage_index, "split": "dev",
                                "metrics": metrics})
        log.info("Epoch %d, step %d/%d: dev perplexity %.4f, agreement %.4f", epoch, self.step, self.total_steps,
                 metrics["perplexity"], metrics["agreement"])
        self._judge(metrics, epoch)


def _match_loss(config: ExperimentConfig, index: int, stage: LMStage, student: torch.nn.Module,
                teacher: torch.nn.Module, device: torch.device) -> Any:
    """A stage's MatchLoss on `device` (None without matches); errors name the stage's field."""
    try:
        match_loss = build_match_loss(stage.matches, student, teacher)
    except ConfigError as exc:
        if not config.stages:
            raise
        raise ConfigError(f"{stage.name}: {exc.message}", field=f"stages.{index}.{exc.field or 'matches'}") from None
    return match_loss.to(device) if match_loss is not None else None
