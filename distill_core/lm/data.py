"""LM data: JSONL prompt/response pairs, chat `messages` rendered with the tokenizer's template, plain text.

Every example becomes one token sequence and the index of its first response token:

    ids    [p_0 .. p_{P-1}, r_0 .. r_{R-1}]   prompt then response (then EOS), at most data.max_length
    start  P (at least 1: the first token of a sequence has nothing before it to predict it from)

Only response tokens are learnt and scored: the logits at position j - 1 predict token j for
start <= j < len(ids). Prompt tokens and padding are masked (`collate`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from distill_core.errors import DatasetError
from distill_core.lm.options import LMConfig

log = logging.getLogger(__name__)


@dataclass
class Row:
    """One example as text: the prompt ("" for plain text) and the response."""

    prompt: str
    response: str
    rendered: bool = False  # prompt/response came from a chat template (special tokens are in the text)


@dataclass
class LMSplit:
    """A tokenised split: token ids and response starts, with the prompts kept for generation."""

    name: str
    ids: list[torch.Tensor]  # N x (L_i,) long
    starts: list[int]  # N first-response-token indices
    prompts: list[str] = field(default_factory=list)  # N prompt texts ("" for plain text)

    def __len__(self) -> int:
        return len(self.ids)

    def response_tokens(self) -> int:
        return sum(len(ids) - start for ids, start in zip(self.ids, self.starts, strict=True))

    def digest(self) -> str:
        """A hash of the token ids and starts: the teacher cache's key material."""
        h = hashlib.blake2b(digest_size=16)
        for ids, start in zip(self.ids, self.starts, strict=True):
            h.update(ids.numpy().astype("int64").tobytes())
            h.update(f"|{start};".encode())
        return h.hexdigest()

    def subset(self, index: list[int], name: str) -> LMSplit:
        return LMSplit(name, [self.ids[i] for i in index], [self.starts[i] for i in index],
                       [self.prompts[i] for i in index])


def read_rows(path: str | Path, options: LMConfig) -> list[Row]:
    """Rows of a JSONL file (or a .txt file: one plain-text document per non-empty line)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"Data file {path} does not exist.", field="data.train")
    if path.suffix == ".txt":
        return [Row("", line.strip()) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path.name} line {number} is not JSON: {exc}") from None
            if not isinstance(record, dict):
                raise DatasetError(f"{path.name} line {number} is not a JSON object.")
            rows.append(_row(record, options, f"{path.name} line {number}"))
    if not rows:
        raise DatasetError(f"{path} has no examples.")
    return rows


def _row(record: dict[str, Any], o: LMConfig, where: str) -> Row | dict[str, Any]:
    fmt = o.data_format
    if fmt == "auto":
        fmt = ("messages" if o.messages_key in record else "prompt_response" if o.response_key in record
               else "text" if o.text_key in record else "")
        if not fmt:
            raise DatasetError(f"{where} has none of the keys {o.messages_key!r}, {o.response_key!r} or "
                               f"{o.text_key!r} (keys: {', '.join(sorted(record)) or 'none'}).", field="lm.data_format")
    if fmt == "messages":
        messages = record.get(o.messages_key)
        if (not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages)
                or messages[-1].get("role") != "assistant"):
            raise DatasetError(f"{where}: {o.messages_key!r} must be a list of {{role, content}} ending with an "
                               f"assistant message (its reply is what the student learns).", field="lm.messages_key")
        return {"messages": messages}
    key = o.text_key if fmt == "text" else o.response_key
    value = record.get(key)
    prompt = record.get(o.prompt_key, "") if fmt == "prompt_response" else ""
    if not isinstance(value, str) or not value or not isinstance(prompt, str):
        raise DatasetError(f"{where}: {key!r} must be a non-empty string (and {o.prompt_key!r} a string).",
                           field=f"lm.{'text_key' if fmt == 'text' else 'response_key'}")
    return Row(prompt, value)


def render_chat(tokenizer: Any, messages: list[dict[str, Any]]) -> Row:
    """The prompt (every message but the last, plus the generation prompt) and the reply, via the chat template."""
    if not getattr(tokenizer, "chat_template", None):
        raise DatasetError("The data has chat `messages` but the teacher's tokenizer has no chat template; "
                           "convert the rows to prompt/response pairs or use a chat model's tokenizer.",
                           field="lm.data_format")
    prompt = tokenizer.apply_chat_template(messages[:-1], add_generation_prompt=True, tokenize=False)
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    if not full.startswith(prompt):
        raise DatasetError("The chat template does not render the conversation as its prompt followed by the reply; "
                           "use prompt/response pairs instead.", field="lm.data_format")
    return Row(prompt, full[len(prompt):], rendered=True)


def tokenise(rows: list[Any], tokenizer: Any, max_length: int, name: str) -> LMSplit:
    """Token ids and response starts for `rows`; examples with no response token left after truncation are dropped."""
    eos = tokenizer.eos_token_id
    split = LMSplit(name, [], [], [])
    dropped = 0
    for row in rows:
        if isinstance(row, dict):
            row = render_chat(tokenizer, row["messages"])
        special = not row.rendered
        prompt = tokenizer(row.prompt, add_special_tokens=special)["input_ids"] if row.prompt or special else []
        response = tokenizer(row.response, add_special_tokens=False)["input_ids"]
        if eos is not None and not row.rendered:
            response = response + [eos]
        ids = (prompt + response)[:max_length]
        start = max(1, len(prompt))
        if start >= len(ids):
            dropped += 1
            continue
        split.ids.append(torch.tensor(ids, dtype=torch.long))
        split.starts.append(start)
        split.prompts.append(row.prompt)
    if dropped:
        log.warning("%s: %d example(s) dropped: no response token fits in max_length=%d", name, dropped, max_length)
    if not split.ids:
        raise DatasetError(f"The {name} split has no example with a response token within max_length={max_length}; "
                           f"raise data.max_length.", field="data.max_length")
    return split


def collate(ids: list[torch.Tensor], starts: list[int], pad_id: int
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded batch: input_ids (B, T), attention_mask (B, T), loss_mask (B, T-1) over next-token positions.

    loss_mask[b, j - 1] is true when token j of example b is a response token (start_b <= j < L_b).
    """
    width = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)  # (B, T)
    attention = torch.zeros(len(ids), width, dtype=torch.long)  # (B, T)
    loss_mask = torch.zeros(len(ids), max(0, width - 1), dtype=torch.bool)  # (B, T-1)
    for b, (x, start) in enumerate(zip(ids, starts, strict=True)):
        input_ids[b, : len(x)] = x
        attention[b, : len(x)] = 1
        loss_mask[b, start - 1: len(x) - 1] = True
    return input_ids, attention, loss_mask
