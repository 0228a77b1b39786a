"""Transformer students: a small `transformers.BertModel` with a classification head.

Presets follow the students of TinyBERT (Jiao et al. 2020, "TinyBERT: Distilling BERT for Natural Language
Understanding": T4-tiny = 4 x 312, T6 = 6 x 768) and TextBrewer (Yang et al. 2020, "TextBrewer: An
Open-Source Knowledge Distillation Toolkit for NLP": T3, T3-small, and T12-nano, ELECTRA-small-sized).
The embeddings have the hidden width, so `embedding_dim` does not apply to these students.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.nn as nn

from distill_core.errors import ConfigError
from distill_core.student_base import (
    Student,
    StudentOutput,
    check_option,
    full_lengths,
    join_pair,
    length_mask,
    parse_options,
    register,
)
from distill_core.student_options import TRANSFORMER_PRESETS, TransformerOptions

INIT_FIELD = "student.options.init_from_teacher"


@register("transformer")
class TransformerStudent(Student):
    """BERT encoder student (Devlin et al. 2019) in the TinyBERT/TextBrewer sizes: embeddings -> L layers ->
    tanh pooler over [CLS] -> dropout -> linear. Attentions come out of the eager implementation.

    `init_from_teacher` copies the teacher's embeddings, pooler and layers 1..L chosen uniformly (teacher
    layer s*L_T/L_S for student layer s, as TinyBERT's layer mapping); widths must match the teacher's.
    """

    has_attentions = True

    def __init__(self, vocab_size: int, num_labels: int, embedding_dim: int = 128, **options: Any):
        super().__init__()
        from transformers import BertConfig, BertModel

        opts = parse_options(TransformerOptions, options, "transformer")  # bounds, presets: student_options.py
        sizes = TRANSFORMER_PRESETS.get(opts.preset, (0, 0, 0, 0))
        layers, hidden, heads, ffn = (given or preset for given, preset in
                                      zip((opts.layers, opts.hidden, opts.heads, opts.ffn), sizes, strict=True))
        for name, value in zip(("layers", "hidden", "heads", "ffn"), (layers, hidden, heads, ffn), strict=True):
            check_option(value >= 1, name, "at least 1 (preset 'custom' needs layers, hidden, heads and ffn)", value)
        check_option(hidden % heads == 0, "heads", f"a divisor of hidden={hidden}", heads)
        teacher_config = _teacher_config(opts.init_from_teacher) if opts.init_from_teacher else None
        if teacher_config is not None:
            opts = dataclasses.replace(
                opts, max_position_embeddings=getattr(teacher_config, "max_position_embeddings", 512),
                type_vocab_size=getattr(teacher_config, "type_vocab_size", 2))
        check_option(opts.max_position_embeddings >= 1, "max_position_embeddings", "at least 1",
                     opts.max_position_embeddings)
        self.options = dataclasses.replace(opts, layers=layers, hidden=hidden, heads=heads, ffn=ffn)
        self.config = BertConfig(vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                                 num_attention_heads=heads, intermediate_size=ffn,
                                 hidden_dropout_prob=opts.dropout, attention_probs_dropout_prob=opts.dropout,
                                 max_position_embeddings=opts.max_position_embeddings,
                                 type_vocab_size=opts.type_vocab_size, attn_implementation="eager")
        self.bert = BertModel(self.config, add_pooling_layer=True)
        self.dropout = nn.Dropout(opts.dropout)
        self.classifier = nn.Linear(hidden, num_labels)
        self.copied_layers: list[tuple[int, int]] = []  # (teacher hidden index, student hidden index) copied
        if opts.init_from_teacher:
            self.copied_layers = self._copy_teacher(opts.init_from_teacher)

    def _hidden_sizes(self) -> list[int]:
        return [self.options.hidden] * (self.options.layers + 1)

    def num_attentions(self) -> int:
        return self.options.layers

    def num_heads(self) -> int:
        return self.options.heads

    def export_options(self) -> dict[str, Any]:
        """Options that rebuild this student without the teacher (its copied weights are in the export)."""
        return dataclasses.asdict(dataclasses.replace(self.options, init_from_teacher=None))

    def forward(self, input_ids: torch.Tensor, lengths: torch.Tensor | None = None,
                pair_ids: torch.Tensor | None = None, pair_lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self._run(input_ids, lengths, pair_ids, pair_lengths, with_features=False).logits

    def features(self, input_ids: torch.Tensor, lengths: torch.Tensor | None = None,
                 pair_ids: torch.Tensor | None = None, pair_lengths: torch.Tensor | None = None) -> StudentOutput:
        return self._run(input_ids, lengths, pair_ids, pair_lengths, with_features=True)

    def _run(self, input_ids, lengths, pair_ids, pair_lengths, with_features: bool) -> StudentOutput:
        lengths = full_lengths(input_ids, lengths)
        segments = torch.zeros_like(input_ids)
        if pair_ids is not None:
            input_ids, lengths, segments = join_pair(input_ids, lengths, pair_ids, full_lengths(pair_ids, pair_lengths))
        if input_ids.size(1) > self.options.max_position_embeddings:
            raise ConfigError(f"The input has {input_ids.size(1)} tokens but the transformer student takes at most "
                              f"{self.options.max_position_embeddings}; lower data.max_length.", field="data.max_length")
        mask = length_mask(lengths, input_ids.size(1))  # (B, T)
        out = self.bert(input_ids=input_ids, attention_mask=mask, token_type_ids=segments,
                        output_hidden_states=with_features, output_attentions=with_features)
        logits = self.classifier(self.dropout(out.pooler_output))  # (B, C)
        if not with_features:
            return StudentOutput(logits)
        return StudentOutput(logits, tuple(out.hidden_states), tuple(out.attentions), mask)

    def _copy_teacher(self, path: str) -> list[tuple[int, int]]:
        """Copy embeddings, pooler and uniformly picked layers from a BERT-like teacher at `path`."""
        from transformers import AutoModelForSequenceClassification

        from distill_core.matches import layer_map

        try:
            # float32 whatever was saved: the copied weights become the student's float32 master weights
            # (AMP stays the explicit train.amp option).
            teacher = AutoModelForSequenceClassification.from_pretrained(path, dtype=torch.float32)
        except Exception as exc:  # transformers raises many kinds for a bad directory
            raise ConfigError(f"{INIT_FIELD}: cannot load a teacher from {path}: {str(exc).splitlines()[0]}",
                              field=INIT_FIELD) from exc
        base = getattr(teacher, teacher.base_model_prefix, None)
        if base is None or not hasattr(base, "embeddings") or not hasattr(getattr(base, "encoder", None), "layer"):
            raise ConfigError(f"{INIT_FIELD}: the {teacher.config.model_type!r} teacher at {path} is not BERT-like "
                              f"(no embeddings/encoder.layer); leave init_from_teacher empty.", field=INIT_FIELD)
        tc, opts = teacher.config, self.options
        for what, mine, theirs in (("hidden size", opts.hidden, tc.hidden_size),
                                   ("attention heads", opts.heads, tc.num_attention_heads),
                                   ("FFN size", opts.ffn, tc.intermediate_size),
                                   ("vocabulary size", self.config.vocab_size, tc.vocab_size)):
            if mine != theirs:
                hint = ("use student.vocab 'teacher'" if what == "vocabulary size"
                        else "choose a preset of the teacher's width or leave init_from_teacher empty")
                raise ConfigError(f"{INIT_FIELD}: the student's {what} is {mine} but the teacher's is {theirs}; "
                                  f"{hint}.", field=INIT_FIELD)
        if opts.layers > tc.num_hidden_layers:
            raise ConfigError(f"{INIT_FIELD}: the student has {opts.layers} layers but the teacher only "
                              f"{tc.num_hidden_layers}; choose a shallower student.", field=INIT_FIELD)
        self.bert.embeddings.load_state_dict(base.embeddings.state_dict())
        if getattr(base, "pooler", None) is not None:
            self.bert.pooler.load_state_dict(base.pooler.state_dict())
        pairs = layer_map("uniform", tc.num_hidden_layers, opts.layers)
        for layer_t, layer_s in pairs:  # hidden indices: layer i is encoder.layer[i - 1]
            self.bert.encoder.layer[layer_s - 1].load_state_dict(base.encoder.layer[layer_t - 1].state_dict())
        return pairs


def _teacher_config(path: str) -> Any:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(path)
    except Exception as exc:
        raise ConfigError(f"{INIT_FIELD}: cannot read a teacher config from {path}: {str(exc).splitlines()[0]}",
                          field=INIT_FIELD) from exc
