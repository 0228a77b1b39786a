"""Write the LM recipes' inputs under var/examples/lm: a random 4 x 64 GPT-2 base with a word-level tokenizer,
and a toy question/answer set whose answers follow from the questions (train 2,000 / dev 200 / test 200).

    .venv/bin/python examples/lm_make_toy.py
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from distill_core.lm.testing import make_tiny_lm, write_toy_data  # noqa: E402

OUT = ROOT / "var" / "examples" / "lm"

if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    make_tiny_lm(OUT / "base", "gpt2", layers=4, hidden=64, heads=4, seed=0)
    for name, n, seed in (("train", 2000, 1), ("dev", 200, 2), ("test", 200, 3)):
        write_toy_data(OUT / f"{name}.jsonl", n, seed=seed, rule=True)
    print(f"wrote {OUT}")
