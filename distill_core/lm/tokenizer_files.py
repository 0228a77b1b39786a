"""A checkpoint's tokenizer read within bounds, and how two tokenizers differ, for checks before a run.

A tokenizer is data from a user: its files are size-checked before transformers parses them, its
config.json passes checkpoint_limits, and nothing is downloaded or run from the checkpoint's code
(local files only, no remote code). The largest public tokenizers take a few tens of MB.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from distill_core.checkpoint_limits import check_config_file
from distill_core.errors import CheckpointError

MAX_TOKENIZER_BYTES = 64 << 20  # every tokenizer file together (Gemma's tokenizer.json is ~33 MB)
# What AutoTokenizer may read from a checkpoint directory besides config.json.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                   "vocab.json", "vocab.txt", "merges.txt", "tokenizer.model", "spiece.model", "chat_template.jinja",
                   "chat_template.json")
SPECIAL = ("bos_token", "eos_token", "pad_token", "unk_token")


def load_tokenizer(path: str | Path, field: str) -> Any:
    """The tokenizer of the checkpoint directory `path` (raises CheckpointError on `field`)."""
    from transformers import AutoTokenizer

    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"{path.name} is not a checkpoint directory.", field=field)
    if (path / "config.json").is_file():
        check_config_file(path / "config.json", field)
    size = sum((path / name).stat().st_size for name in TOKENIZER_FILES if (path / name).is_file())
    if size > MAX_TOKENIZER_BYTES:
        raise CheckpointError(f"The tokenizer files of {path.name} take {size:,} bytes; at most "
                              f"{MAX_TOKENIZER_BYTES:,} are read.", field=field)
    try:
        return AutoTokenizer.from_pretrained(path, local_files_only=True, trust_remote_code=False)
    except Exception as exc:  # transformers raises many types for a broken or foreign directory
        raise CheckpointError(f"Cannot read the tokenizer of {path.name}: {str(exc).splitlines()[0][:300]}",
                              field=field) from exc


def describe_difference(teacher: Any, student: Any) -> str | None:
    """Why two tokenizers do not share a vocabulary (sizes, special tokens, the first differing pieces); None if they do."""
    t_vocab, s_vocab = teacher.get_vocab(), student.get_vocab()
    if t_vocab == s_vocab:
        return None
    parts = [f"the teacher's vocabulary has {len(t_vocab):,} tokens and the student's {len(s_vocab):,}"]
    special = [f"{name} {_token(teacher, name)!r} vs {_token(student, name)!r}" for name in SPECIAL
               if _token(teacher, name) != _token(student, name)]
    if special:
        parts.append("special tokens differ: " + ", ".join(special))
    t_pieces, s_pieces = _by_id(t_vocab), _by_id(s_vocab)
    first = next((i for i in range(max(len(t_pieces), len(s_pieces)))
                  if t_pieces.get(i) != s_pieces.get(i)), None)
    if first is not None:
        parts.append(f"the first differing id is {first}: {t_pieces.get(first, '(none)')!r} in the teacher, "
                     f"{s_pieces.get(first, '(none)')!r} in the student")
    return "; ".join(parts)


def _token(tokenizer: Any, name: str) -> str | None:
    value = getattr(tokenizer, name, None)
    return None if value is None else str(value)


def _by_id(vocab: dict[str, int]) -> dict[int, str]:
    return {index: piece for piece, index in vocab.items()}
