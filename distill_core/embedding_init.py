"""Start a classic student's token embeddings from what the teacher (or a word-vector file) already knows.

    student.embedding_init: "random" | "teacher" | "file" | "auto"

- teacher: the teacher's input (word-piece) embeddings, for students on the teacher's pieces
  (student.vocab "teacher"): row i of the student's table is the teacher's row i.
- file: a word2vec/GloVe text file (word_vectors.py) for char/word vocabularies: a token's row is
  its vector; tokens the file lacks keep their random start.
- auto: teacher for a TextCNN/BiLSTM/BiGRU on the teacher's pieces, file when student.embedding_file
  is set, random otherwise (the TREC benchmark's finding, docs/BENCHMARKS.md).

The source rows are centred and scaled to unit standard deviation, the scale of nn.Embedding's own
N(0, 1) start. When the source width differs from student.embedding_dim, student.embedding_projection
decides how the rows reach the student's width:

- once: projected onto the table's principal directions before training: a plain table, trained as
  a random one would be (the same step time);
- frozen / learned: the student trains a `ProjectedEmbedding`, the source-wide table followed by a
  learned linear projection (started on those directions), with the source table frozen or trained
  too (a dense AdamW update of a 30,522 x 384 table triples a BiGRU step on the CPU).
  It is folded back into a plain `embedding_dim`-wide table when training ends (`fold_embeddings`).

Either way the exported student, its size and its latency are exactly those of a randomly started one.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
import torch.nn as nn

from distill_core.config import StudentConfig
from distill_core.errors import ConfigError

log = logging.getLogger(__name__)
CLASSIC = ("textcnn", "bilstm", "bigru")


def resolve_source(student: StudentConfig) -> str:
    """The init `student` gets: "random", "teacher" or "file" ("auto" resolved)."""
    if student.embedding_init != "auto":
        return student.embedding_init
    if student.embedding_file:
        return "file"
    if student.vocab == "teacher" and student.type in CLASSIC:
        return "teacher"
    return "random"


class ProjectedEmbedding(nn.Module):
    """A (V, D_src) table read through a learned (D_src -> D) projection: what a student trains when widths differ."""

    def __init__(self, table: torch.Tensor, out_dim: int, padding_idx: int | None = 0, train_table: bool = True):
        super().__init__()
        vocab, width = table.shape
        self.table = nn.Embedding(vocab, width, padding_idx=padding_idx)
        self.table.weight.data.copy_(table)
        self.table.weight.requires_grad_(train_table)  # frozen: AdamW skips the big table (embedding_projection)
        self.proj = nn.Linear(width, out_dim, bias=False)
        self.proj.weight.data.copy_(principal_projection(table, out_dim))
        self.embedding_dim = out_dim
        self.padding_idx = padding_idx

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.proj(self.table(input_ids))  # (B, T, D)

    def folded(self) -> nn.Embedding:
        """The plain (V, D) table this module computes: table @ proj^T."""
        with torch.no_grad():
            weight = self.table.weight @ self.proj.weight.T  # (V, D)
        out = nn.Embedding(weight.size(0), weight.size(1), padding_idx=self.padding_idx)
        out.weight.data.copy_(weight)
        return out.to(weight.device)


def principal_projection(table: torch.Tensor, out_dim: int) -> torch.Tensor:
    """(out_dim, D_src): the table's top principal directions, scaled so the projected rows keep unit std.

    Rows past D_src (a student wider than its source) start as small random directions.
    """
    width = table.size(1)
    centred = table.float() - table.float().mean(dim=0, keepdim=True)
    # eigenvectors of the (D_src, D_src) covariance, largest first
    _, _, v = torch.linalg.svd(centred[: min(len(centred), 100_000)], full_matrices=False)  # v: (D_src, D_src)
    k = min(out_dim, width)
    weight = torch.randn(out_dim, width, generator=torch.Generator().manual_seed(0)) / width ** 0.5
    weight[:k] = v[:k]
    std = (centred @ weight.T).std().clamp(min=1e-6)
    return weight / std


def standardise(rows: torch.Tensor) -> torch.Tensor:
    """Centre and scale to one overall standard deviation of 1 (nn.Embedding's own start is N(0, 1))."""
    rows = rows.float()
    centred = rows - rows.mean(dim=0, keepdim=True)
    return centred / centred.std().clamp(min=1e-6)


def teacher_table(teacher: nn.Module, vocab_size: int) -> torch.Tensor:
    """The teacher's input word-piece embeddings, (vocab_size, H), standardised, on the CPU."""
    weight = teacher.get_input_embeddings().weight.detach().float().cpu()  # (V_t, H)
    if weight.size(0) < vocab_size:  # a tokenizer with added tokens the model never resized for
        extra = torch.randn(vocab_size - weight.size(0), weight.size(1)) * weight.std()
        weight = torch.cat([weight, extra])
    return standardise(weight[:vocab_size])


def file_table(tokens: list[str], vectors: dict[str, torch.Tensor], width: int,
               generator: torch.Generator) -> tuple[torch.Tensor, int]:
    """(V, width) rows for `tokens` from `vectors` (exact, then lower-cased), random N(0, 1) elsewhere.

    Returns the table and how many tokens the file covered. The found rows are standardised on
    their own so they share the random rows' scale.
    """
    table = torch.randn(len(tokens), width, generator=generator)
    found = {i: vectors.get(tok, vectors.get(tok.lower())) for i, tok in enumerate(tokens)}
    found = {i: v for i, v in found.items() if v is not None and i != 0}  # row 0 is [PAD]
    if found:
        index = torch.tensor(list(found))
        table[index] = standardise(torch.stack(list(found.values())))
    table[0] = 0.0
    return table, len(found)


def initialise_embeddings(student: nn.Module, config: StudentConfig, *, teacher: nn.Module | None = None,
                          tokens: list[str] | None = None, seed: int = 0) -> dict[str, Any]:
    """Set `student.embedding` from the teacher or the word-vector file; returns what was done (for the results).

    `tokens` is the student's char/word vocabulary in id order (needed for "file").
    """
    source = resolve_source(config)
    if source == "random":
        return {"source": "random"}
    if config.type not in CLASSIC or not isinstance(getattr(student, "embedding", None), nn.Embedding):
        raise ConfigError(f"student.embedding_init={config.embedding_init!r} is for TextCNN, BiLSTM and BiGRU; "
                          f"a transformer student starts from the teacher with options.init_from_teacher.",
                          field="student.embedding_init")
    vocab_size = student.embedding.num_embeddings
    if source == "teacher":
        if teacher is None:
            raise ConfigError("Initialising from the teacher needs the teacher model.", field="student.embedding_init")
        table, covered = teacher_table(teacher, vocab_size), vocab_size
    else:
        from distill_core.word_vectors import read_word_vectors

        assert tokens is not None and len(tokens) == vocab_size, "file init needs the vocabulary's tokens"
        vectors, width = read_word_vectors(config.embedding_file or "", wanted=set(tokens) | {t.lower() for t in tokens})
        table, covered = file_table(tokens, vectors, width, torch.Generator().manual_seed(seed))
    width, target = table.size(1), student.embedding.embedding_dim
    device = student.embedding.weight.device
    projection = config.embedding_projection if width != target else None
    if width == target:
        student.embedding.weight.data.copy_(table.to(device))
    elif projection == "once":
        student.embedding.weight.data.copy_((table @ principal_projection(table, target).T).to(device))
    else:
        student.embedding = ProjectedEmbedding(table, target, student.embedding.padding_idx,
                                               train_table=projection == "learned").to(device)
    info = {"source": source, "source_dim": width, "embedding_dim": target, "projected": projection is not None, "projection": projection,
            "covered": covered, "vocab_size": vocab_size}
    log.info("Student embeddings from %s: %s", source, info)
    return info


def fold_embeddings(student: nn.Module) -> None:
    """Replace a ProjectedEmbedding by the plain table it computes (before export, size and latency)."""
    if isinstance(getattr(student, "embedding", None), ProjectedEmbedding):
        student.embedding = student.embedding.folded()
