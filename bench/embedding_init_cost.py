"""What a classic student's training step costs with each student.embedding_projection (issue #14 part 2).

    OMP_NUM_THREADS=1 .venv/bin/python bench/embedding_init_cost.py [--teacher DIR] [--rounds 5] [--steps 20]

A BiGRU as in bench/quality_trec.py (hidden 128, fc 128, 128-d embeddings over the teacher's 30,522
pieces) starts from a 384-d teacher table (the given teacher's, else a random one of that shape:
a step's cost does not depend on the values) with each projection: "once" (a plain 128-d table),
"frozen" (384-d table frozen, projection trained) and "learned" (both trained), and none ("random",
the plain table). One step = forward, cross-entropy, backward, gradient clipping at 1.0 and AdamW on
a batch of 32 x 14 piece ids (TREC's mean question length). The modes take turns, `--steps` steps
each, for `--rounds` rounds, so machine noise hits them alike; the figures are median ms per step
(process CPU time and wall time) and each mode's ratio to "random". The last line is the JSON summary.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from distill_core.config import StudentConfig  # noqa: E402
from distill_core.embedding_init import initialise_embeddings  # noqa: E402
from distill_core.students import build_student  # noqa: E402

MODES = ("random", "once", "frozen", "learned")


class TableTeacher(nn.Module):
    """Just the input table: what initialise_embeddings reads of a teacher."""

    def __init__(self, table: torch.Tensor):
        super().__init__()
        self.table = nn.Embedding.from_pretrained(table)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.table


def teacher_table(path: Path | None) -> torch.Tensor:
    if path is None:
        return torch.randn(30_522, 384, generator=torch.Generator().manual_seed(0))
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(path).get_input_embeddings().weight.detach()


def student_for(mode: str, teacher: nn.Module) -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    student = build_student("bigru", teacher.table.num_embeddings, 6, 128, {"hidden_size": 128, "fc_size": 128})
    if mode != "random":
        initialise_embeddings(student, StudentConfig(type="bigru", vocab="teacher", embedding_init="teacher",
                                                     embedding_projection=mode), teacher=teacher)
    params = [p for p in student.parameters() if p.requires_grad]
    return student.train(), torch.optim.AdamW(params, lr=3e-3)


def timed_steps(student: nn.Module, optimiser: torch.optim.Optimizer, steps: int, vocab: int) -> tuple[float, float]:
    """(CPU ms, wall ms) per step over `steps` steps."""
    generator = torch.Generator().manual_seed(1)
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(steps):
        ids = torch.randint(3, vocab, (32, 14), generator=generator)
        labels = torch.randint(0, 6, (32,), generator=generator)
        loss = nn.functional.cross_entropy(student(ids, torch.full((32,), 14)), labels)
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        optimiser.step()
    return 1000 * (time.process_time() - cpu) / steps, 1000 * (time.perf_counter() - wall) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    teacher = TableTeacher(teacher_table(args.teacher))
    built = {mode: student_for(mode, teacher) for mode in MODES}
    for mode in MODES:  # warm-up: AdamW's state, the allocator
        timed_steps(*built[mode], 3, teacher.table.num_embeddings)
    samples: dict[str, list[tuple[float, float]]] = {mode: [] for mode in MODES}
    for _ in range(args.rounds):
        for mode in MODES:
            samples[mode].append(timed_steps(*built[mode], args.steps, teacher.table.num_embeddings))
    out = {"bench": "embedding_init_cost", "rounds": args.rounds, "steps": args.steps,
           "teacher": str(args.teacher) if args.teacher else "random 30522 x 384", "modes": {}}
    for mode in MODES:
        cpu = statistics.median(s[0] for s in samples[mode])
        wall = statistics.median(s[1] for s in samples[mode])
        trained = sum(p.numel() for p in built[mode][0].parameters() if p.requires_grad)
        out["modes"][mode] = {"cpu_ms": round(cpu, 2), "wall_ms": round(wall, 2), "trained_parameters": trained}
    base = out["modes"]["random"]["cpu_ms"]
    for row in out["modes"].values():
        row["cpu_ratio_to_random"] = round(row["cpu_ms"] / base, 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
