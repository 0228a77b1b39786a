"""The teacher pass of one checkpoint saved in float32, float16 and bfloat16, on the CPU: sentences/s.

    python bench/teacher_dtype.py                      # a random 6 x 384 BERT, 256 demo titles
    python bench/teacher_dtype.py --layers 1 --hidden 64 --sentences 32   # the smoke size

The same random BERT (seeded) is written with save_pretrained in each dtype under var/bench/, then
distill_core's teacher pass (load_teacher + teacher_logits, what a run does) labels the bundled demo
titles. `naive` loads each save as transformers does by default (keeping the saved dtype), which is
what the teacher pass did before distill_core chose the compute dtype. Prints one JSON line; the
target is every saved dtype >= 0.9x the float32 figure.
"""

from __future__ import annotations

import argparse
import json
import time

import _common as common

DTYPES = ("float32", "float16", "bfloat16")


def titles(n: int) -> list[str]:
    rows = common.read_tsv(common.DEMO / "train.tsv")
    texts = [text for text, _ in rows]
    return (texts * (n // max(1, len(texts)) + 1))[:n]


def write_saves(layers: int, hidden: int, texts: list[str]) -> dict[str, str]:
    from distill_core.testing import make_tiny_teacher

    out = {}
    for dtype in DTYPES:
        path = common.VAR / f"teacher-dtype-{layers}x{hidden}" / dtype
        if not (path / "config.json").is_file():
            make_tiny_teacher(path, common.LABELS, "".join(texts), layers=layers, hidden=hidden,
                              heads=max(1, hidden // 64), intermediate=4 * hidden, seed=0, dtype=dtype)
        out[dtype] = str(path)
    return out


def sentences_per_s(models: dict[str, tuple], texts: list[str], max_length: int, repeats: int) -> dict[str, float]:
    """Best of `repeats` full passes per model, the models taking turns within each round.

    Turns, not one model after another: on a shared machine the load drifts over minutes, and a model
    measured in a quiet minute must not look faster than its neighbour. One warm-up batch each first.
    """
    from distill_core.teachers import teacher_logits

    best = {}
    for model, tokenizer in models.values():
        teacher_logits(model, tokenizer, texts[:64], None, max_length, batch_size=64)
    for _ in range(repeats):
        for name, (model, tokenizer) in models.items():
            started = time.perf_counter()
            teacher_logits(model, tokenizer, texts, None, max_length, batch_size=64)
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - started)
    return {name: round(len(texts) / seconds, 2) for name, seconds in best.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--hidden", type=int, default=384)
    parser.add_argument("--sentences", type=int, default=256)
    parser.add_argument("--max-length", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-naive", action="store_true", help="skip the transformers-default (saved dtype) load")
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForSequenceClassification

    from distill_core.teachers import inspect_checkpoint, load_teacher

    torch.set_num_threads(args.threads)
    texts = titles(args.sentences)
    saves = write_saves(args.layers, args.hidden, texts)
    loaded = {dtype: load_teacher(path, "cpu") for dtype, path in saves.items()}
    compute = {dtype: str(next(m.parameters()).dtype).removeprefix("torch.") for dtype, (m, _) in loaded.items()}
    rates = sentences_per_s(loaded, texts, args.max_length, args.repeats)
    naive = {}
    if not args.no_naive:
        as_saved = {dtype: (AutoModelForSequenceClassification.from_pretrained(path).eval(), loaded[dtype][1])
                    for dtype, path in saves.items()}  # transformers' default keeps the saved dtype
        naive = sentences_per_s(as_saved, texts, args.max_length, args.repeats)
    ratios = {dtype: round(rates[dtype] / rates["float32"], 3) for dtype in DTYPES}
    print(json.dumps({
        "bench": "teacher_dtype", "layers": args.layers, "hidden": args.hidden,
        "parameters": inspect_checkpoint(saves["float32"])["parameters"], "sentences": len(texts),
        "max_length": args.max_length, "threads": args.threads, "compute_dtype": compute,
        "sentences_per_s": rates, "ratio_vs_float32": ratios,
        "naive_sentences_per_s": naive,
        "naive_ratio_vs_float32": {d: round(naive[d] / naive["float32"], 3) for d in naive} if naive else {},
        "target_met": all(r >= 0.9 for r in ratios.values()), "peak_rss_mb": common.peak_rss_mb(),
    }))


if __name__ == "__main__":
    main()
