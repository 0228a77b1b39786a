"""Greedy generation a token at a time, bounded in tokens and wall time (for "Try it").

    for text in stream_greedy(model, tokenizer, "what does the cat ?", max_new_tokens=32, seconds=10): ...

The prompt is cut from the left so prompt + new tokens fit the model's positions. Each step
yields the whole continuation decoded so far (not a delta: decoding may join or tidy earlier
pieces, and a character split across byte-level tokens appears only once whole). Loading a model
within bounds: `load_bounded`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from distill_core.checkpoint_limits import bounded_build, check_config_file
from distill_core.errors import CheckpointError

WEIGHT_SUFFIXES = (".safetensors", ".bin")


def load_bounded(path: str | Path, max_bytes: int, field: str) -> tuple[torch.nn.Module, Any]:
    """(causal LM in eval mode on the CPU, tokenizer) from `path`, refused beyond checkpoint_limits or `max_bytes` of weights."""
    from transformers import AutoModelForCausalLM

    from distill_core.lm.tokenizer_files import load_tokenizer

    path = Path(path)
    if not (path / "config.json").is_file():
        raise CheckpointError(f"{path.name} has no config.json.", field=field)
    check_config_file(path / "config.json", field)
    size = sum(p.stat().st_size for p in path.iterdir() if p.suffix in WEIGHT_SUFFIXES and p.is_file())
    if size > max_bytes:
        raise CheckpointError(f"{path.name} holds {size / 2**20:,.0f} MB of weights; at most {max_bytes / 2**20:,.0f} MB "
                              f"are loaded in a web request.", field=field)
    tokenizer = load_tokenizer(path, field)
    try:
        with bounded_build():
            model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, local_files_only=True,
                                                         trust_remote_code=False)
    except CheckpointError:
        raise
    except Exception as exc:  # transformers raises many types for a broken or foreign directory
        raise CheckpointError(f"Cannot load {path.name} as a causal language model: "
                              f"{str(exc).splitlines()[0][:300]}", field=field) from exc
    return model.eval(), tokenizer


@torch.no_grad()
def stream_greedy(model: torch.nn.Module, tokenizer: Any, prompt: str, max_new_tokens: int,
                  seconds: float) -> Iterator[str]:
    """The continuation so far after each greedy step that changed it; stops at EOS, after `max_new_tokens`, or
    once `seconds` have passed."""
    deadline = time.monotonic() + seconds
    ids = tokenizer(prompt)["input_ids"] if prompt else []
    if not ids:
        ids = [_first_id(tokenizer)]
    room = _positions(model) - max_new_tokens
    ids = ids[-max(1, room):]  # keep the end of a long prompt: it is what the continuation follows
    input_ids = torch.tensor([ids], dtype=torch.long)  # (1, L)
    past, generated, shown = None, [], ""
    eos = tokenizer.eos_token_id
    for _ in range(max_new_tokens):
        if time.monotonic() > deadline:
            return
        out = model(input_ids=input_ids, past_key_values=past, use_cache=True)
        past = out.past_key_values
        token = int(out.logits[0, -1].argmax())
        if eos is not None and token == eos:
            return
        generated.append(token)
        text = tokenizer.decode(generated, skip_special_tokens=True)
        if text != shown and not text.endswith("\ufffd"):  # U+FFFD: half a character, wait for the next piece
            yield text
            shown = text
        input_ids = torch.tensor([[token]], dtype=torch.long)  # (1, 1)


def _first_id(tokenizer: Any) -> int:
    for value in (tokenizer.bos_token_id, tokenizer.eos_token_id):
        if value is not None:
            return int(value)
    return 0


def _positions(model: torch.nn.Module) -> int:
    config = model.config
    for name in ("max_position_embeddings", "n_positions", "n_ctx"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return 2048
