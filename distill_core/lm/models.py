"""The causal-LM teacher and student: load, derive (layers picked and copied), preset, tokenizer check."""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from distill_core.errors import CheckpointError, ConfigError
from distill_core.lm.options import LMConfig
from distill_core.matches import layer_map

log = logging.getLogger(__name__)


def load_causal_lm(path: str | Path, device: torch.device, field: str = "teacher.path") -> tuple[nn.Module, Any]:
    """An AutoModelForCausalLM and its tokenizer from a local directory, in float32, in eval mode."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not Path(path).is_dir():
        raise CheckpointError(f"{path} is not a checkpoint directory.", field=field)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    except Exception as exc:
        raise CheckpointError(f"Cannot load {path} as a causal language model: {exc}", field=field) from exc
    return model.to(device).eval(), tokenizer


def pad_id(tokenizer: Any) -> int:
    """The id padding uses: the tokenizer's pad token, else EOS, else 0 (padding is masked either way)."""
    for value in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if value is not None:
            return int(value)
    return 0


def tokenizer_difference(teacher: Any, student: Any) -> str | None:
    """Why two tokenizers do not share a vocabulary, in words; None when they do (same token -> id map)."""
    t_vocab, s_vocab = teacher.get_vocab(), student.get_vocab()
    if t_vocab == s_vocab:
        return None
    only_t = sorted(set(t_vocab) - set(s_vocab), key=t_vocab.get)
    only_s = sorted(set(s_vocab) - set(t_vocab), key=s_vocab.get)
    parts = [f"the teacher's tokenizer has {len(t_vocab)} tokens and the student's {len(s_vocab)}"]
    if only_t:
        parts.append(f"{len(only_t)} only in the teacher's (e.g. {', '.join(repr(t) for t in only_t[:3])})")
    if only_s:
        parts.append(f"{len(only_s)} only in the student's (e.g. {', '.join(repr(t) for t in only_s[:3])})")
    moved = [t for t in t_vocab if t in s_vocab and t_vocab[t] != s_vocab[t]]
    if moved:
        token = moved[0]
        parts.append(f"{len(moved)} with another id (e.g. {token!r} is {t_vocab[token]} in the teacher and "
                     f"{s_vocab[token]} in the student)")
    return "; ".join(parts)


def check_same_tokenizer(teacher: Any, student: Any) -> None:
    """Raise ConfigError naming the difference unless teacher and student share a vocabulary."""
    difference = tokenizer_difference(teacher, student)
    if difference:
        raise ConfigError(f"Teacher and student must share a tokenizer (token-level distillation compares their "
                          f"distributions id by id), but {difference}.", field="lm.student_path")


def layer_list(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """The decoder's block list (`transformer.h` in GPT-2, `model.layers` in Llama) and its name."""
    n = model.config.num_hidden_layers
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == n and name:
            return name, module
    raise CheckpointError(f"Cannot find the {n} decoder layers of {type(model).__name__}; use a preset or "
                          f"a checkpoint student instead.", field="lm.student_source")


def build_student(options: LMConfig, teacher: nn.Module, teacher_tokenizer: Any, device: torch.device,
                  student_path: str | None = None) -> tuple[nn.Module, Any, dict[str, Any]]:
    """The student, its tokenizer and how it was made ({"source", "layers", "picked"}).

    derived: the teacher's config with `layers` blocks, embeddings/norms/head and the blocks picked by
    `layer_pick` (uniform/top/bottom, matches.layer_map) copied; preset: the teacher's family with the
    chosen depth and width, fresh weights; checkpoint: `student_path`, whose tokenizer must match.
    """
    from transformers import AutoModelForCausalLM

    source = options.student_source
    if source == "checkpoint":
        student, tokenizer = load_causal_lm(student_path or options.student_path, device, field="lm.student_path")
        check_same_tokenizer(teacher_tokenizer, tokenizer)
        return student.train(), tokenizer, {"source": source, "layers": student.config.num_hidden_layers}
    config = copy.deepcopy(teacher.config)
    teacher_layers = config.num_hidden_layers
    if source == "derived" and options.layers > teacher_layers:
        raise ConfigError(f"A derived student picks {options.layers} of the teacher's {teacher_layers} layers; "
                          f"choose at most {teacher_layers}.", field="lm.layers")
    config.num_hidden_layers = options.layers
    if source == "preset":
        _set_width(config, options)
    student = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    info: dict[str, Any] = {"source": source, "layers": options.layers}
    if source == "derived":
        picked = [t - 1 for t, _ in layer_map(options.layer_pick, teacher_layers, options.layers)]
        _copy_weights(teacher, student, picked)
        info["picked"] = picked
    return student.to(device).train(), teacher_tokenizer, info


def _set_width(config: Any, options: LMConfig) -> None:
    hidden = options.hidden_size or config.hidden_size
    heads = options.num_heads or config.num_attention_heads
    if hidden % heads:
        raise ConfigError(f"hidden_size {hidden} is not divisible by {heads} attention heads; set num_heads.",
                          field="lm.num_heads")
    config.hidden_size, config.num_attention_heads = hidden, heads
    if getattr(config, "num_key_value_heads", None) is not None and heads % config.num_key_value_heads:
        config.num_key_value_heads = heads
    if getattr(config, "head_dim", None) is not None:
        config.head_dim = hidden // heads
    if options.intermediate_size:
        name = "n_inner" if hasattr(config, "n_inner") else "intermediate_size"
        setattr(config, name, options.intermediate_size)


def _copy_weights(teacher: nn.Module, student: nn.Module, picked: list[int]) -> None:
    """Copy every teacher tensor into the student; student block j takes teacher block picked[j]."""
    prefix, _ = layer_list(student)
    t_state = teacher.state_dict()
    state = {}
    for key in student.state_dict():
        source = key
        if key.startswith(prefix + "."):
            index, _, rest = key[len(prefix) + 1:].partition(".")
            source = f"{prefix}.{picked[int(index)]}.{rest}"
        state[key] = t_state[source].detach().clone().float()
    student.load_state_dict(state)
