"""Recurrent students: BiLSTM (Tang et al. 2019) and its GRU twin.

hidden_states are (embedding output (B, T, E), RNN outputs (B, T, 2H)), zero past each length.
With `siamese: true` a text pair is encoded twice by the same RNN and compared (Tang et al. 2019);
such a student has no token-level hidden states to match.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

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
from distill_core.student_options import BiGRUOptions, BiLSTMOptions, BiRNNOptions


class BiRNN(Student):
    """embedding -> 1-layer bidirectional RNN over the unpadded tokens -> concatenated final forward and
    backward states (B, 2H) -> tanh fully-connected layer -> dropout -> linear."""

    rnn_type: type[nn.RNNBase] = nn.LSTM
    options_type: type[BiRNNOptions] = BiRNNOptions

    def __init__(self, vocab_size: int, num_labels: int, embedding_dim: int = 128, **options: Any):
        super().__init__()
        self.options = opts = parse_options(self.options_type, options, self.name)  # bounds: student_options.py
        check_option(0 <= opts.sep_id < vocab_size, "sep_id", f"a token id below the vocabulary size {vocab_size}",
                     opts.sep_id)
        self.embedding_dim = embedding_dim
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        self.rnn = self.rnn_type(embedding_dim, opts.hidden_size, num_layers=1, batch_first=True, bidirectional=True)
        # Tang et al. feed the siamese comparison [h1, h2, h1*h2, |h1-h2|] (4 x 2H) to the classifier.
        self.fc = nn.Linear((8 if opts.siamese else 2) * opts.hidden_size, opts.fc_size)
        self.dropout = nn.Dropout(opts.dropout)
        self.classifier = nn.Linear(opts.fc_size, num_labels)

    def _hidden_sizes(self) -> list[int]:
        return [] if self.options.siamese else [self.embedding_dim, 2 * self.options.hidden_size]

    def encode(self, input_ids: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(embedded (B, T, E), outputs (B, T, 2H), final (B, 2H)) for right-padded ids."""
        embedded = self.embedding(input_ids)  # (B, T, E)
        packed = nn.utils.rnn.pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, h_n = self.rnn(packed)
        if isinstance(h_n, tuple):  # LSTM: (h_n, c_n)
            h_n = h_n[0]
        outputs, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=input_ids.size(1))
        return embedded, outputs, torch.cat([h_n[0], h_n[1]], dim=1)  # h_n: (2, B, H), forward then backward

    def features(self, input_ids: torch.Tensor, lengths: torch.Tensor | None = None,
                 pair_ids: torch.Tensor | None = None, pair_lengths: torch.Tensor | None = None) -> StudentOutput:
        lengths = full_lengths(input_ids, lengths)
        if self.options.siamese:
            if pair_ids is None:
                input_ids, lengths, pair_ids, pair_lengths = split_at(input_ids, lengths, self.options.sep_id)
            _, _, h1 = self.encode(input_ids, lengths)
            _, _, h2 = self.encode(pair_ids, full_lengths(pair_ids, pair_lengths))
            h = torch.cat([h1, h2, h1 * h2, (h1 - h2).abs()], dim=1)  # (B, 8H)
            return StudentOutput(self._classify(h))
        if pair_ids is not None:
            input_ids, lengths, _ = join_pair(input_ids, lengths, pair_ids, full_lengths(pair_ids, pair_lengths))
        embedded, outputs, h = self.encode(input_ids, lengths)
        return StudentOutput(self._classify(h), (embedded, outputs), None, length_mask(lengths, input_ids.size(1)))

    def _classify(self, h: torch.Tensor) -> torch.Tensor:
        h = self.dropout(torch.tanh(self.fc(h)))  # (B, fc_size)
        return self.classifier(h)  # (B, C)


@register("bilstm")
class BiLSTM(BiRNN):
    """BiLSTM student (Tang et al. 2019, "Distilling Task-Specific Knowledge from BERT into Simple Neural Networks").

    The paper's model: 300-d embeddings, one bidirectional LSTM layer of 300 units per direction, the
    concatenated final states through a tanh fully-connected layer, then the output layer; sentence
    pairs through a siamese encoder compared as [h1, h2, h1*h2, |h1-h2|] (option `siamese`).
    """

    rnn_type = nn.LSTM
    options_type = BiLSTMOptions


@register("bigru")
class BiGRU(BiRNN):
    """BiGRU student: the BiLSTM of Tang et al. 2019 with gated recurrent units (Cho et al. 2014,
    "Learning Phrase Representations using RNN Encoder-Decoder for Statistical Machine Translation").
    """

    rnn_type = nn.GRU
    options_type = BiGRUOptions


def split_at(input_ids: torch.Tensor, lengths: torch.Tensor, sep_id: int) -> tuple[torch.Tensor, ...]:
    """Split joined pairs at the first `sep_id`: (ids_a, lengths_a, ids_b, lengths_b), lengths >= 1.

    A row without the separator keeps all its tokens as the text and gets an empty ([PAD]) pair.
    """
    rows_a, rows_b = [], []
    for row, n in zip(input_ids, lengths.tolist(), strict=True):
        row = row[:n]
        hits = (row == sep_id).nonzero()
        cut = int(hits[0]) if len(hits) else n
        rows_a.append(row[:cut])
        rows_b.append(row[cut + 1:])
    return (*_pad(rows_a), *_pad(rows_b))


def _pad(rows: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([max(1, len(r)) for r in rows], dtype=torch.long)  # (B,)
    ids = torch.zeros(len(rows), int(lengths.max()), dtype=torch.long, device=rows[0].device)  # (B, T)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = r
    return ids, lengths.to(ids.device)
