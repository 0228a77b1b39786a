"""The teacher pass of one checkpoint saved in float32, float16 and bfloat16, on the CPU: sentences/s.

    python bench/teacher_dtype.py                      # a random 6 x 384 BERT, 256 demo titles
    python bench/teacher_dtype.py --layers 1 --hidden 64 --sentences 32   # the smoke size

The same random BERT (seeded) is written with save_pretrained in each dtype under var/bench/, loaded
with distill_core's load_teacher (what a run does), and timed over the bundled demo titles the way
teacher_logits batches them. `naive` loads each save as transformers does by default (keeping the
saved dtype), which is what the teacher pass did before distill_core chose the compute dtype. Prints
one JSON line; the target is every saved dtype >= 0.9x the float32 figure.
"""

from __future__ import annotations

import argparse
import json
import time

import _common as common
import torch

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


@torch.no_grad()
def sentences_per_s(models: dict[str, torch.nn.Module], tokenizer, texts: list[str], max_length: int,
                    repeats: int) -> dict[str, float]:
    """The teacher pass (tokenise + forward, batches of 64 shortest first, as teacher_logits) per model.

    The models take turns on every batch, in a rotating order, and each batch keeps its best time over
    `repeats` rounds: on a shared 2-core machine the load swings several-fold within a minute, and
    one model measured in a quiet minute must not look faster than its neighbour. Tokenising is the
    same for every model, so it is timed once per batch and added to each.
    """
    from distill_core.teachers import tokenize

    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    batches = [[texts[i] for i in order[start: start + 64]] for start in range(0, len(texts), 64)]
    names = list(models)
    tokenise_best = [float("inf")] * len(batches)
    forward_best = {name: [float("inf")] * len(batches) for name in names}
    for round_ in range(repeats):
        for b, batch_texts in enumerate(batches):
            started = time.perf_counter()
            batch = tokenize(tokenizer, batch_texts, None, max_length)
            tokenise_best[b] = min(tokenise_best[b], time.perf_counter() - started)
            shift = (round_ + b) % len(names)
            for name in names[shift:] + names[:shift]:
                started = time.perf_counter()
                models[name](**batch).logits.float()
                forward_best[name][b] = min(forward_best[name][b], time.perf_counter() - started)
    tokenising = sum(tokenise_best)
    return {name: round(len(texts) / (tokenising + sum(forward_best[name])), 2) for name in names}


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

    from transformers import AutoModelForSequenceClassification

    from distill_core.teachers import inspect_checkpoint, load_teacher

    torch.set_num_threads(args.threads)
    texts = titles(args.sentences)
    saves = write_saves(args.layers, args.hidden, texts)
    loaded = {dtype: load_teacher(path, "cpu") for dtype, path in saves.items()}
    tokenizer = loaded["float32"][1]  # the saves share one tokenizer
    compute = {dtype: str(next(m.parameters()).dtype).removeprefix("torch.") for dtype, (m, _) in loaded.items()}
    models = {dtype: model for dtype, (model, _) in loaded.items()}
    if not args.no_naive:  # transformers' default keeps the saved dtype
        models |= {f"naive_{dtype}": AutoModelForSequenceClassification.from_pretrained(path).eval()
                   for dtype, path in saves.items()}
    measured = sentences_per_s(models, tokenizer, texts, args.max_length, args.repeats)
    rates = {dtype: measured[dtype] for dtype in DTYPES}
    naive = {dtype: measured[f"naive_{dtype}"] for dtype in DTYPES if f"naive_{dtype}" in measured}
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
