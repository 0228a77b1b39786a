"""Intermediate-layer matches: which teacher feature a student feature learns from, with which loss.

A match is `MatchConfig(layer_T, layer_S, feature, loss, weight, proj)`, the JSON shape of TextBrewer's
intermediate_matches. Indexing follows Hugging Face outputs, not TextBrewer's:

- feature "hidden": hidden_states index, 0 = the embedding output, i = the output of layer i (1..L);
- feature "attention": attentions index, 0-based, i = the attention of layer i + 1 (0..L-1);
- feature "embedding": hidden state 0 on both sides (layer_T = layer_S = 0).

So TextBrewer's L3_attention_mse (teacher layers 4, 8, 12) is layer_T 3, 7, 11 here; its hidden
presets keep their numbers. Hidden and attention matches compare token by token, so the teacher and the
student must share the tokenisation (student.vocab "teacher"): `validate_matches` checks it when told
the vocabulary and `MatchLoss` refuses features of different lengths.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from distill_core.errors import ConfigError, UnknownNameError
from distill_core.intermediate import ACTIVATIONS, IntermediateLoss, Projection, intermediate_losses
from distill_core.registry import Registry
from distill_core.student_base import StudentOutput

FEATURES = ("hidden", "attention", "embedding")
ATTENTION_LOSSES = {"attention_mse", "attention_mse_sum", "attention_ce", "attention_ce_mean"}
HEAD_REDUCED = {"attention_mse_sum", "attention_ce_mean"}  # compare head sums/means: head counts may differ
WIDTH_FREE = {"mmd"}  # token-by-token Gram matrices: any widths


@dataclass
class MatchConfig:
    """One intermediate match; `proj` is None or ["linear", dim_S, dim_T] (+ optional "relu"/"tanh")."""

    layer_T: int
    layer_S: int
    feature: str
    loss: str
    weight: float = 1.0
    proj: list | None = None

    @classmethod
    def from_dict(cls, raw: dict[str, Any], index: int = 0) -> MatchConfig:
        """Build a match from its JSON form; errors name `matches.<index>.<key>`."""
        where = f"matches.{index}"
        if not isinstance(raw, dict):
            raise ConfigError(f"match {index} must be an object like {{\"layer_T\": 4, \"layer_S\": 1, ...}}.",
                              field=where)
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(raw) - set(names))
        if unknown:
            raise ConfigError(f"match {index}: unknown key {unknown[0]!r}; known: {', '.join(names)}.",
                              field=f"{where}.{unknown[0]}")
        missing = [n for n in ("layer_T", "layer_S", "feature", "loss") if n not in raw]
        if missing:
            raise ConfigError(f"match {index}: {missing[0]} is missing.", field=f"{where}.{missing[0]}")
        for name in ("layer_T", "layer_S"):
            if not isinstance(raw[name], int) or isinstance(raw[name], bool) or raw[name] < 0:
                raise ConfigError(f"match {index}: {name} must be a layer index (0 or more), got {raw[name]!r}.",
                                  field=f"{where}.{name}")
        if raw["feature"] not in FEATURES:
            raise ConfigError(f"match {index}: feature {raw['feature']!r} is not one of: {', '.join(FEATURES)}.",
                              field=f"{where}.feature")
        if not isinstance(raw["loss"], str):
            raise ConfigError(f"match {index}: loss must be a name, got {raw['loss']!r}.", field=f"{where}.loss")
        weight = raw.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight < 0:
            raise ConfigError(f"match {index}: weight must be a number of 0 or more, got {weight!r}.",
                              field=f"{where}.weight")
        proj = raw.get("proj")
        _check_proj(proj, index)
        return cls(raw["layer_T"], raw["layer_S"], raw["feature"], raw["loss"], float(weight),
                   list(proj) if proj is not None else None)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _check_proj(proj: Any, index: int) -> None:
    if proj is None:
        return
    ok = (isinstance(proj, (list, tuple)) and len(proj) in (3, 4) and proj[0] == "linear"
          and all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in proj[1:3])
          and (len(proj) == 3 or proj[3] in ACTIVATIONS))
    if not ok:
        raise ConfigError(f"match {index}: proj must be null or [\"linear\", dim_S, dim_T] with an optional "
                          f"\"relu\" or \"tanh\", got {proj!r}.", field=f"matches.{index}.proj")


def parse_matches(raw: Any) -> list[MatchConfig]:
    """A list of match dicts (JSON) -> MatchConfigs; a string names a preset.

    List items may also be preset names, expanded in place, so presets combine:
    ["L4t_hidden_mse", "L4_hidden_smmd"] is GeneralDistiller's T4-tiny recipe.
    """
    if isinstance(raw, str):
        return preset(raw)
    if not isinstance(raw, list):
        raise ConfigError("matches must be a list of match objects or a preset name.", field="matches")
    out: list[MatchConfig] = []
    for item in raw:
        if isinstance(item, str):
            out.extend(preset(item))
        else:
            out.append(MatchConfig.from_dict(item, len(out)))
    return out


# ---- presets: TextBrewer's examples/matches/matches.py, translated to Hugging Face indexing ----

presets: Registry[tuple[MatchConfig, ...]] = Registry("match preset", field="matches.preset")


def _define(name: str, pairs: Sequence[tuple[int, int]], feature: str, loss: str, proj: list | None = None) -> None:
    presets.register(name)(tuple(MatchConfig(t, s, feature, loss, 1.0, proj) for t, s in pairs))


def _attention(teacher_layers: Sequence[int], student_layers: Sequence[int]) -> list[tuple[int, int]]:
    """TextBrewer numbers attentions from 1; ours start at 0."""
    return [(t - 1, s - 1) for t, s in zip(teacher_layers, student_layers, strict=True)]


_L3 = [(0, 0), (4, 1), (8, 2), (12, 3)]
_L4 = [(0, 0), (3, 1), (6, 2), (9, 3), (12, 4)]
_L6 = [(0, 0), (2, 1), (4, 2), (6, 3), (8, 4), (10, 5), (12, 6)]
_SMALL = [(i, i) for i in range(0, 13, 2)]
for _loss in ("attention_mse", "attention_mse_sum", "attention_ce", "attention_ce_mean"):
    _define(f"L3_{_loss}", _attention([4, 8, 12], [1, 2, 3]), "attention", _loss)
    _define(f"L4_{_loss}", _attention([3, 6, 9, 12], [1, 2, 3, 4]), "attention", _loss)
_define("L3_hidden_mse", _L3, "hidden", "hidden_mse")
_define("L3n_hidden_mse", _L3, "hidden", "hidden_mse", ["linear", 384, 768])
_define("L3_hidden_smmd", _L3, "hidden", "mmd")
_define("L4t_hidden_mse", _L4, "hidden", "hidden_mse", ["linear", 312, 768])
_define("L4_hidden_smmd", _L4, "hidden", "mmd")
_define("L4t_hidden_smmd", _L4, "hidden", "mmd")  # not in TextBrewer: L4_hidden_smmd, named for the T4-tiny student
_define("L4t_hidden_sgram", _L4, "hidden", "fsp", ["linear", 312, 768])
_define("L6_hidden_mse", _L6, "hidden", "hidden_mse")
_define("L6_hidden_smmd", _L6, "hidden", "mmd")
_define("small_hidden_mse", _SMALL, "hidden", "hidden_mse", ["linear", 256, 768])
_define("small_hidden_smmd", _SMALL, "hidden", "mmd")


def preset(name: str) -> list[MatchConfig]:
    """Fresh copies of a named preset's matches (UnknownNameError on `matches.preset` otherwise)."""
    return [copy.deepcopy(m) for m in presets.get(name)]


# ---- generators ----

def layer_map(strategy: str, teacher_layers: int, student_layers: int) -> list[tuple[int, int]]:
    """Pair each student layer s = 1..L_S with a teacher layer (hidden-state numbering, 1-based).

    uniform: t = floor(s * L_T / L_S) (TinyBERT's g(m) = m * L_T / L_S; 12 -> 4 gives 3, 6, 9, 12);
    top: the last L_S teacher layers; bottom: the first L_S.
    """
    if strategy not in ("uniform", "top", "bottom"):
        raise ConfigError(f"Layer-mapping strategy {strategy!r} is not one of: uniform, top, bottom.",
                          field="matches.strategy")
    if not 1 <= student_layers <= teacher_layers:
        raise ConfigError(f"The student has {student_layers} layers and the teacher {teacher_layers}; a layer map "
                          f"needs 1 <= student layers <= teacher layers.", field="matches.strategy")
    if strategy == "uniform":
        return [(s * teacher_layers // student_layers, s) for s in range(1, student_layers + 1)]
    offset = teacher_layers - student_layers if strategy == "top" else 0
    return [(s + offset, s) for s in range(1, student_layers + 1)]


def generate(strategy: str, feature: str, loss: str, teacher_layers: int, student_layers: int, *,
             weight: float = 1.0, proj: list | None = None, include_embeddings: bool = True) -> list[MatchConfig]:
    """Matches for every student layer by `layer_map`; hidden matches also pair the embeddings (0, 0)."""
    pairs = layer_map(strategy, teacher_layers, student_layers)
    if feature == "attention":
        pairs = [(t - 1, s - 1) for t, s in pairs]
    elif feature == "embedding":
        pairs = [(0, 0)]
    elif include_embeddings:
        pairs = [(0, 0), *pairs]
    return [MatchConfig.from_dict({"layer_T": t, "layer_S": s, "feature": feature, "loss": loss, "weight": weight,
                                   "proj": proj}, i) for i, (t, s) in enumerate(pairs)]


# ---- validation against a teacher and a built student ----

def validate_matches(matches: Sequence[MatchConfig], teacher_info: dict[str, Any], student: nn.Module,
                     student_vocab: str | None = None) -> None:
    """Raise ConfigError (field `matches.<i>.<key>`) for the first match this teacher/student cannot serve.

    teacher_info: {"num_layers", "hidden_size", "num_heads" (optional), "has_attentions" (default True)},
    as `teachers.inspect_checkpoint` describes a checkpoint. `student_vocab`, when given, must be "teacher".
    """
    if matches and student_vocab is not None and student_vocab != "teacher":
        raise ConfigError(f"Intermediate matches compare teacher and student token by token, so the student must "
                          f"read the teacher's tokens: set student.vocab to 'teacher' (not {student_vocab!r}).",
                          field="student.vocab")
    name = getattr(student, "name", type(student).__name__)
    n_hidden = student.num_hidden_states() if hasattr(student, "num_hidden_states") else 0
    n_attn = student.num_attentions() if hasattr(student, "num_attentions") else 0
    t_layers, t_hidden = teacher_info.get("num_layers"), teacher_info.get("hidden_size")
    if matches and not (isinstance(t_layers, int) and isinstance(t_hidden, int)):
        raise ConfigError("The teacher's config does not give its layer count and hidden size, so intermediate "
                          "matches cannot be checked; use prediction-layer KD only.", field="matches")
    for i, m in enumerate(matches):
        where = f"matches.{i}"
        loss_named(m.loss, i)
        attention_loss = m.loss in ATTENTION_LOSSES
        if (m.feature == "attention") != attention_loss:
            wanted = "an attention loss" if m.feature == "attention" else "a hidden-state loss"
            raise ConfigError(f"match {i}: loss {m.loss!r} does not fit feature {m.feature!r}; choose {wanted}.",
                              field=f"{where}.loss")
        if m.feature == "attention":
            if not teacher_info.get("has_attentions", True):
                raise ConfigError(f"match {i}: feature 'attention' but the teacher has no attentions.",
                                  field=f"{where}.feature")
            if not getattr(student, "has_attentions", False):
                raise ConfigError(f"match {i}: feature 'attention' but the student {name} has no attentions.",
                                  field=f"{where}.feature")
            _in_range(i, "layer_T", m.layer_T, t_layers, "the teacher has attentions")
            _in_range(i, "layer_S", m.layer_S, n_attn, f"the student {name} has attentions")
            t_heads, s_heads = teacher_info.get("num_heads"), student.num_heads()
            if m.loss not in HEAD_REDUCED and t_heads is not None and t_heads != s_heads:
                reduced = {"attention_mse": "attention_mse_sum (head sums)", "attention_ce": "attention_ce_mean (head means)"}
                raise ConfigError(f"match {i}: {m.loss} needs equal head counts (student {s_heads}, teacher "
                                  f"{t_heads}); use {reduced[m.loss]} instead.", field=f"{where}.loss")
            if m.proj is not None:
                raise ConfigError(f"match {i}: proj applies to hidden states, not attention maps; remove it.",
                                  field=f"{where}.proj")
            continue
        if n_hidden == 0:
            raise ConfigError(f"match {i}: feature {m.feature!r} but the student {name} has no hidden states.",
                              field=f"{where}.feature")
        if m.feature == "embedding" and (m.layer_T, m.layer_S) != (0, 0):
            raise ConfigError(f"match {i}: feature 'embedding' reads hidden state 0 on both sides; set layer_T and "
                              f"layer_S to 0.", field=f"{where}.layer_{'T' if m.layer_T else 'S'}")
        _in_range(i, "layer_T", m.layer_T, t_layers + 1, "the teacher has hidden states")
        _in_range(i, "layer_S", m.layer_S, n_hidden, f"the student {name} has hidden states")
        s_width = student.hidden_size(m.layer_S)
        if m.proj is not None:
            if m.proj[1] != s_width:
                raise ConfigError(f"match {i}: proj maps {m.proj[1]} -> {m.proj[2]} but the student's hidden size "
                                  f"is {s_width}.", field=f"{where}.proj")
            if m.proj[2] != t_hidden:
                raise ConfigError(f"match {i}: proj maps {m.proj[1]} -> {m.proj[2]} but the teacher's hidden size "
                                  f"is {t_hidden}.", field=f"{where}.proj")
        elif s_width != t_hidden and m.loss not in WIDTH_FREE:
            raise ConfigError(f"match {i}: hidden sizes differ (student {s_width}, teacher {t_hidden}): add proj "
                              f"[\"linear\", {s_width}, {t_hidden}].", field=f"{where}.proj")


def loss_named(loss: str, index: int) -> IntermediateLoss:
    """The registered loss, or UnknownNameError naming the match and `matches.<index>.loss`."""
    if loss not in intermediate_losses:
        raise UnknownNameError(f"match {index}: unknown intermediate loss {loss!r}; known: "
                               f"{', '.join(intermediate_losses.names())}.", field=f"matches.{index}.loss")
    return intermediate_losses.get(loss)


def _in_range(index: int, key: str, value: int, count: int, owner: str) -> None:
    if not 0 <= value < count:
        span = f"0..{count - 1}" if count else "none"
        raise ConfigError(f"match {index}: {key}={value} but {owner} {span}.", field=f"matches.{index}.{key}")


# ---- the loss module ----

class MatchLoss(nn.Module):
    """The weighted intermediate losses of a list of matches, with their projections (trained with the student).

    forward returns one term per match, keyed `match{i}_{loss}_T{layer_T}_S{layer_S}`, each already weighted;
    their sum is the intermediate loss. Teacher features are detached; `mask` (B, T) defaults to the
    student's attention_mask. Each projection's teacher side is checked against `teacher_hidden_size`
    here; its student side, whose width may vary by layer (BiLSTM), is checked by `validate_matches`.
    """

    def __init__(self, matches: Sequence[MatchConfig], student_hidden_size: int | None,
                 teacher_hidden_size: int | None):
        super().__init__()
        self.matches = list(matches)
        self.student_hidden_size, self.teacher_hidden_size = student_hidden_size, teacher_hidden_size
        self.projections = nn.ModuleDict()
        for i, m in enumerate(self.matches):
            loss_named(m.loss, i)
            if m.proj is not None:
                _check_proj(m.proj, i)
                if teacher_hidden_size is not None and m.proj[2] != teacher_hidden_size:
                    raise ConfigError(f"match {i}: proj maps {m.proj[1]} -> {m.proj[2]} but the teacher's hidden "
                                      f"size is {teacher_hidden_size}.", field=f"matches.{i}.proj")
                self.projections[str(i)] = Projection(m.proj[1], m.proj[2], m.proj[3] if len(m.proj) > 3 else None)

    def keys(self) -> list[str]:
        return [f"match{i}_{m.loss}_T{m.layer_T}_S{m.layer_S}" for i, m in enumerate(self.matches)]

    @property
    def needs_attentions(self) -> bool:
        """Whether any match compares attentions (the teacher is asked for them only then)."""
        return any(m.feature == "attention" for m in self.matches)

    def forward(self, student_out: StudentOutput, teacher_hidden: tuple[torch.Tensor, ...] | None,
                teacher_attn: tuple[torch.Tensor, ...] | None, mask: torch.Tensor | None) -> dict[str, torch.Tensor]:
        mask = student_out.attention_mask if mask is None else mask
        terms: dict[str, torch.Tensor] = {}
        for i, (key, m) in enumerate(zip(self.keys(), self.matches, strict=True)):
            attention = m.feature == "attention"
            student_side = student_out.attentions if attention else student_out.hidden_states
            teacher_side = teacher_attn if attention else teacher_hidden
            if not student_side or not teacher_side:  # None, or the empty tuple of an SDPA model asked for attentions
                who = "student" if not student_side else "teacher"
                raise ConfigError(f"match {i}: the {who} returned no {'attentions' if attention else 'hidden states'}.",
                                  field=f"matches.{i}.feature")
            feature_s, feature_t = student_side[m.layer_S], teacher_side[m.layer_T].detach()
            if feature_s.size(-2) != feature_t.size(-2):
                raise ConfigError(f"match {i}: the student's sequence has {feature_s.size(-2)} tokens and the "
                                  f"teacher's {feature_t.size(-2)}; hidden and attention matches need the teacher's "
                                  f"tokenisation (student.vocab 'teacher').", field="student.vocab")
            if str(i) in self.projections:
                feature_s = self.projections[str(i)](feature_s)  # (B, T, dim_T)
            feature_t = feature_t.to(feature_s.dtype)  # a half-precision teacher on CUDA vs a float32 student
            terms[key] = m.weight * loss_named(m.loss, i)(feature_s, feature_t, mask)
        return terms
