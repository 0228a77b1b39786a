"""Scoring a causal LM on responses, greedy samples, and generation latency.

score: perplexity exp(mean CE over response tokens), top-1 agreement with the teacher, and the
distillation loss (token-weighted mean over the split).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import torch

from distill_core.lm.data import LMSplit, collate
from distill_core.lm.losses import gather_topk

# (indices, input_ids (B, T), attention (B, T), loss_mask (B, T-1)) -> (teacher logits (n, K), ids (n, K) or None)
TargetFn = Callable[[list[int], torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor | None]]


@torch.no_grad()
def score(model: torch.nn.Module, split: LMSplit, pad: int, device: torch.device, batch_size: int,
          targets: TargetFn | None = None, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
          advance: Callable[[int], None] = lambda n: None) -> dict[str, float]:
    """{"perplexity", "nll"} of `model` on the split's responses; with `targets`, also "agreement" and "distill_loss"."""
    was_training = model.training
    model.eval()
    nll = agree = loss_sum = 0.0
    tokens = 0
    try:
        for start in range(0, len(split), batch_size):
            index = list(range(start, min(start + batch_size, len(split))))
            input_ids, attention, mask = collate([split.ids[i] for i in index], [split.starts[i] for i in index], pad)
            input_ids, attention, mask = input_ids.to(device), attention.to(device), mask.to(device)
            logits = model(input_ids=input_ids, attention_mask=attention).logits[:, :-1][mask].float()  # (n, V)
            gold = input_ids[:, 1:][mask]  # (n,)
            nll += float(torch.nn.functional.cross_entropy(logits, gold, reduction="sum"))
            tokens += gold.numel()
            if targets is not None:
                z_t, ids = targets(index, input_ids, attention, mask)
                teacher_top1 = ids[:, 0] if ids is not None else z_t.argmax(-1)
                agree += float((logits.argmax(-1) == teacher_top1).sum())
                if loss_fn is not None:
                    z_s = gather_topk(logits, ids) if ids is not None else logits
                    loss_sum += float(loss_fn(z_s, z_t)) * gold.numel()
            advance(len(index))
    finally:
        model.train(was_training)
    mean = nll / max(1, tokens)
    out = {"perplexity": round(math.exp(min(mean, 80.0)), 6), "nll": round(mean, 6)}
    if targets is not None:
        out["agreement"] = round(agree / max(1, tokens), 6)
        if loss_fn is not None:
            out["distill_loss"] = round(loss_sum / max(1, tokens), 6)
    return out


@torch.no_grad()
def generate(model: torch.nn.Module, tokenizer: Any, prompts: list[torch.Tensor], device: torch.device,
             max_new_tokens: int) -> list[str]:
    """Greedy continuations of prompt token ids (L_i,), one at a time (no padding effects), decoded as text."""
    was_training = model.training
    model.eval()
    out = []
    try:
        for prompt in prompts:
            ids = prompt[None, :].to(device)  # (1, L)
            if ids.size(1) == 0:
                ids = torch.tensor([[tokenizer.bos_token_id or tokenizer.eos_token_id or 0]], device=device)
            new = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                 do_sample=False, pad_token_id=_pad(tokenizer))[0, ids.size(1):]
            out.append(tokenizer.decode(new, skip_special_tokens=True))
    finally:
        model.train(was_training)
    return out


@torch.no_grad()
def generation_speed(model: torch.nn.Module, vocab_size: int, device: torch.device, prompt_length: int = 16,
                     new_tokens: int = 16, repeats: int = 3) -> dict[str, float]:
    """Time to first token (ms, batch 1) and decode throughput (new tokens/s) at batch 1 and 8, medians of `repeats`.

    Random prompt ids; `min_new_tokens` forces every run to the same length whatever the model emits.
    """
    was_training = model.training
    model.eval()
    generator = torch.Generator().manual_seed(0)

    def timed(batch: int, n: int) -> float:
        ids = torch.randint(0, vocab_size, (batch, prompt_length), generator=generator).to(device)
        times = []
        for _ in range(repeats + 1):  # the first run warms up
            _sync(device)
            started = time.perf_counter()
            model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, min_new_tokens=n,
                           do_sample=False, pad_token_id=0)
            _sync(device)
            times.append(time.perf_counter() - started)
        return sorted(times[1:])[len(times[1:]) // 2]

    try:
        first = timed(1, 1)
        b1, b8 = timed(1, new_tokens), timed(8, new_tokens)
    finally:
        model.train(was_training)
    return {"time_to_first_token_ms": round(first * 1000, 3), "tokens_per_s_batch_1": round(new_tokens / b1, 2),
            "tokens_per_s_batch_8": round(8 * new_tokens / b8, 2), "prompt_tokens": prompt_length,
            "new_tokens": new_tokens}


def _pad(tokenizer: Any) -> int:
    from distill_core.lm.models import pad_id

    return pad_id(tokenizer)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
