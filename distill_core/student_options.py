"""Every student's options, declared once (see options.py), without torch: the web form reads them too.

`student_types` is the registry of student names: a student is declared here with its options
dataclass, and its model class (students.py, students_rnn.py, students_transformer.py) registers
under the same name in student_base.students, which refuses a name not declared here.
"""

from __future__ import annotations

from dataclasses import dataclass

from distill_core.options import opt
from distill_core.registry import Registry

student_types: Registry[type] = Registry("student", field="student.type")

# The transformer size presets, name: (layers, hidden, heads, ffn). TinyBERT's T4-tiny (4 x 312) and T6,
# TextBrewer's T3, T3-small and T12-nano (ELECTRA-small-sized).
TRANSFORMER_PRESETS: dict[str, tuple[int, int, int, int]] = {
    "T3": (3, 768, 12, 3072),
    "T3-small": (3, 384, 12, 1536),
    "T4-tiny": (4, 312, 12, 1200),
    "T6": (6, 768, 12, 3072),
    "T12-nano": (12, 256, 4, 1024),
}
DROPOUT = {"low": 0.0, "high": 1.0, "high_open": True}


def _preset_names() -> tuple[str, ...]:
    return (*TRANSFORMER_PRESETS, "custom")


@student_types.register("textcnn")
@dataclass
class TextCNNOptions:
    filter_sizes: list[int] = opt([2, 3, 4], "Convolution widths in tokens.", low=1, high=64, length=(1, 10),
                                  what="A filter size")
    num_filters: int = opt(128, "Filters per width.", low=1, high=4096)
    dropout: float = opt(0.5, "Dropout before the classifier.", **DROPOUT)


@dataclass
class BiRNNOptions:
    hidden_size: int = opt(300, "Units per direction (Tang et al.'s 300).", low=1, high=4096)
    fc_size: int = opt(400, "Width of the tanh layer before the classifier.", low=1, high=8192)
    dropout: float = opt(0.1, "Dropout before the classifier.", **DROPOUT)
    siamese: bool = opt(False, "Encode the two sentences of a pair separately and compare them as "
                               "[h1, h2, h1*h2, |h1-h2|] (no token-level hidden states to match).")
    sep_id: int = opt(2, "The token id that splits a joined pair when siamese and no pair ids are given "
                         "(the vocabulary's [SEP]).", low=0)


@student_types.register("bilstm")
@dataclass
class BiLSTMOptions(BiRNNOptions):
    pass


@student_types.register("bigru")
@dataclass
class BiGRUOptions(BiRNNOptions):
    pass


@student_types.register("transformer")
@dataclass
class TransformerOptions:
    preset: str = opt("T4-tiny", "Size preset: T3/T6 have BERT's width; T4-tiny is 4×312, T3-small 3×384, "
                                 "T12-nano 12×256; custom needs all four sizes.", choices=_preset_names)
    layers: int = opt(0, "Transformer layers; 0: the preset's.", low=1, high=48, unset=0)
    hidden: int = opt(0, "Hidden size; 0: the preset's.", low=1, high=4096, unset=0)
    heads: int = opt(0, "Attention heads, a divisor of the hidden size; 0: the preset's.", low=1, high=64, unset=0)
    ffn: int = opt(0, "Feed-forward size; 0: the preset's.", low=1, high=16384, unset=0)
    dropout: float = opt(0.1, "Hidden and attention dropout.", **DROPOUT)
    max_position_embeddings: int = opt(512, "Positions the student reads; taken from the teacher when "
                                            "init_from_teacher is set.", low=1, high=65536)
    type_vocab_size: int = opt(2, "Token type (segment) ids.", low=1, high=16)
    init_from_teacher: str | None = opt(None, "A local teacher checkpoint: copy its embeddings, pooler and a "
                                              "uniform pick of its layers (widths must match).")
