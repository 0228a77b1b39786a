"""A checkpoint's tokenizer, read within distill_core.lm.tokenizer_files' bounds and kept while its files are unchanged.

Used by the experiment form's shared-tokenizer check (webapp/experiments/lm_checks.py) and the LM dataset
page's rendered preview (views_lm_datasets.py): a form post or a page view reads a checkpoint's tokenizer
files once per modification.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any


def tokenizer_of(path: Path, field: str) -> Any:
    """The tokenizer of a checkpoint directory (raises CheckpointError naming `field`)."""
    from distill_core.lm.tokenizer_files import TOKENIZER_FILES

    path = path.resolve()
    stamp = max(((path / name).stat().st_mtime for name in TOKENIZER_FILES if (path / name).is_file()), default=0.0)
    return _read(str(path), stamp, field)


@functools.lru_cache(maxsize=8)  # a failed read raises and is not kept
def _read(path: str, stamp: float, field: str) -> Any:
    from distill_core.lm.tokenizer_files import load_tokenizer

    return load_tokenizer(Path(path), field)


def cached() -> int:
    """How many tokenizers are held (tests)."""
    return _read.cache_info().currsize


def forget() -> None:
    _read.cache_clear()
