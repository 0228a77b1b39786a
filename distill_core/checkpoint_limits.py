"""Bounds on a teacher's config.json, checked before transformers reads it or builds a model from it.

A checkpoint is data from a user: a 24 KB archive saying `num_hidden_layers: 9000` made the
meta-device build that counts parameters take 36 s and 430 MB. The limits are generous (well
above the largest public models) and declared once here; every alias a model family uses for
the same quantity shares its limit, at any nesting depth (text_config, encoder, ...).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from distill_core.errors import CheckpointError

MAX_CONFIG_BYTES = 1024 * 1024  # a real config.json is a few KB
MAX_CONFIG_DEPTH = 8
# Modules a meta-device build may create: a 256-layer BERT has ~4,600. It catches the knobs the
# table below does not name (experts, groups, ...) that multiply the modules, each ~0.2-1 ms.
MAX_MODULES = 20_000

# (what, largest value, the config.json keys that mean it)
LIMITS: tuple[tuple[str, int, tuple[str, ...]], ...] = (
    ("layers", 256, ("num_hidden_layers", "n_layer", "n_layers", "num_layers", "encoder_layers", "decoder_layers")),
    ("hidden size", 65_536, ("hidden_size", "n_embd", "d_model", "dim")),
    ("attention heads", 1_024, ("num_attention_heads", "n_head", "n_heads", "num_heads", "num_key_value_heads",
                                "encoder_attention_heads", "decoder_attention_heads")),
    ("intermediate size", 262_144, ("intermediate_size", "n_inner", "ffn_dim", "hidden_dim", "d_ff",
                                    "encoder_ffn_dim", "decoder_ffn_dim")),
    ("vocabulary size", 1_048_576, ("vocab_size",)),
    ("maximum positions", 1_048_576, ("max_position_embeddings", "n_positions", "n_ctx")),
    ("labels", 10_000, ("num_labels",)),
    ("experts", 512, ("num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts")),
)
LIMIT_OF_KEY = {key: (what, limit) for what, limit, keys in LIMITS for key in keys}


def check_config_file(path: Path, field: str) -> dict[str, Any]:
    """Read `path` (a config.json) and raise CheckpointError naming the first value over its limit."""
    size = path.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise CheckpointError(f"config.json is {size:,} bytes; a model's config is a few KB (at most "
                              f"{MAX_CONFIG_BYTES:,} accepted).", field=field)
    try:
        config = json.loads(path.read_bytes())
    except (ValueError, RecursionError) as exc:
        raise CheckpointError(f"config.json is not valid JSON ({type(exc).__name__}).", field=field) from None
    if not isinstance(config, dict):
        raise CheckpointError("config.json must hold a JSON object.", field=field)
    _check(config, "", 0, field)
    return config


def _check(node: dict[str, Any], prefix: str, depth: int, field: str) -> None:
    if depth > MAX_CONFIG_DEPTH:
        raise CheckpointError(f"config.json nests objects more than {MAX_CONFIG_DEPTH} deep ({prefix.rstrip('.')}).",
                              field=field)
    for key, value in node.items():
        if isinstance(value, dict):
            if key in ("id2label", "label2id") and len(value) > LIMIT_OF_KEY["num_labels"][1]:
                raise CheckpointError(f"config.json's {prefix}{key} has {len(value):,} labels; at most "
                                      f"{LIMIT_OF_KEY['num_labels'][1]:,} are accepted.", field=field)
            _check(value, f"{prefix}{key}.", depth + 1, field)
        elif key in LIMIT_OF_KEY and isinstance(value, int | float) and not isinstance(value, bool):
            what, limit = LIMIT_OF_KEY[key]
            if value > limit:
                raise CheckpointError(f"config.json sets {prefix}{key} to {value:,}; teachers may have at most "
                                      f"{limit:,} {what}.", field=field)


_build = threading.local()


@contextmanager
def bounded_build() -> Iterator[None]:
    """Stop a model build in this thread with CheckpointError once it has created MAX_MODULES modules."""
    from torch.nn.modules.module import register_module_module_registration_hook

    _build.count = 0
    _build.active = True
    handle = register_module_module_registration_hook(_count_module)  # global: counts only this thread's build
    try:
        yield
    finally:
        handle.remove()
        _build.active = False


def _count_module(module, name, submodule) -> None:
    if getattr(_build, "active", False):
        _build.count += 1
        if _build.count > MAX_MODULES:
            raise CheckpointError(f"the model has more than {MAX_MODULES:,} modules; a teacher has a few thousand.")
