"""Distillery's LM distillation against TRL's GKDTrainer: tokens/s over 3 epochs, peak RSS, forward KL on one batch.

    (install TRL and its dependencies into var/bench-trl: the command is in bench/requirements.txt)
    cd bench && PYTHONPATH=../var/bench-trl ../.venv/bin/python lm_vs_trl.py [--vocab 8192] [--examples 256]

Same teacher (a random GPT-2, `--layers` x `--hidden`, vocabulary `--vocab`), same student (the teacher's
layers 2 and 4 copied, Distillery's "derived" student, saved once and loaded by both), same chat data
(`messages`, rendered with the tokenizer's template by both), same sequence length, batch size, learning
rate, 3 epochs, forward KL (GKD beta = 0, lambda = 0: no on-policy sampling), T = 1. Each system runs in a
fresh subprocess so its peak RSS is its own. Tokens/s = response tokens trained on (3 epochs) / seconds of
teacher labelling + training (Distillery's results["seconds"]; TRL's trainer.train()). Distillery's
training seconds include its per-epoch dev evaluation (8 examples), TRL runs no evaluation.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from _common import ROOT, VAR, peak_rss_mb

WORK = VAR / "lm_vs_trl"


def build(args) -> dict[str, Path]:
    """Teacher, student, tokenizer and the chat data, under var/bench/lm_vs_trl."""
    import torch

    from distill_core.lm.models import build_student, load_causal_lm
    from distill_core.lm.options import LMConfig
    from distill_core.lm.testing import make_tiny_lm

    words = tuple(f"w{i}" for i in range(args.vocab - 8)) + ("user", "assistant", ":", "?")
    teacher = make_tiny_lm(WORK / "teacher", "gpt2", layers=args.layers, hidden=args.hidden, heads=4, words=words)
    model, tokenizer = load_causal_lm(teacher, torch.device("cpu"))
    student, _, _ = build_student(LMConfig(layers=args.layers // 2), model, tokenizer, torch.device("cpu"))
    student.save_pretrained(WORK / "student")
    tokenizer.save_pretrained(WORK / "student")
    rng = random.Random(0)
    common = [f"w{i}" for i in range(200)]  # a skewed word distribution, as text has
    rows = []
    for _ in range(args.examples + 8):
        prompt = " ".join(rng.choice(common) for _ in range(rng.randint(4, 12))) + " ?"
        reply = " ".join(rng.choice(common) if rng.random() < 0.8 else f"w{rng.randrange(args.vocab - 8)}"
                         for _ in range(rng.randint(args.seq // 2, args.seq - 24)))
        rows.append({"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": reply}]})
    for name, part in (("train", rows[: args.examples]), ("dev", rows[args.examples:])):
        (WORK / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part))
    return {"teacher": teacher, "student": WORK / "student"}


def run_distillery(mode: str, args) -> dict:
    from distill_core.config import ExperimentConfig
    from distill_core.distiller import run

    config = ExperimentConfig.from_dict({
        "name": f"bench-{mode}", "kind": "lm_distill", "seed": 0,
        "data": {"train": str(WORK / "train.jsonl"), "dev": str(WORK / "dev.jsonl"), "format": "jsonl",
                 "max_length": args.seq},
        "teacher": {"path": str(WORK / "teacher")},
        "train": {"epochs": 3, "batch_size": args.batch, "learning_rate": 5e-4, "lr_schedule": "linear",
                  "grad_clip": 1.0, "log_every": 1000, "checkpoint_every": 10**6},
        "lm": {"mode": mode, "loss": "forward_kl", "temperature": 1.0, "top_k": args.top_k,
               "student_source": "checkpoint", "student_path": str(WORK / "student"), "samples": 0},
    })
    cache = WORK / f"cache-{time.time_ns()}"  # a cold cache: the teacher pass is part of the measured time
    results = run(config, cache_dir=cache if mode == "offline" else None)
    seconds = results["seconds"]["teacher_inference"] + results["seconds"]["training"]
    tokens = 3 * results["response_tokens"]["train"]
    return {"system": f"distillery-{mode}", "seconds": round(seconds, 3), "tokens": tokens,
            "tokens_per_s": round(tokens / seconds, 1), "peak_rss_mb": peak_rss_mb()}


def _dataset(rows: list[dict]):
    """A datasets.Dataset with a fixed fingerprint: datasets 5.2's fingerprint hashing cannot pickle pyarrow 26's
    MonthDayNano type here (PicklingError in Dataset.from_list), and nothing is cached by fingerprint in this run."""
    from datasets import Dataset
    from datasets.table import InMemoryTable

    return Dataset(InMemoryTable.from_pylist(rows), fingerprint="lm-vs-trl-train")


def run_trl(args) -> dict:
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl.experimental.gkd import GKDConfig, GKDTrainer

    tokenizer = AutoTokenizer.from_pretrained(WORK / "teacher")
    rows = [json.loads(line) for line in (WORK / "train.jsonl").read_text().splitlines()]
    trainer = GKDTrainer(
        model=AutoModelForCausalLM.from_pretrained(WORK / "student", dtype=torch.float32),
        teacher_model=AutoModelForCausalLM.from_pretrained(WORK / "teacher", dtype=torch.float32),
        args=GKDConfig(output_dir=str(WORK / "trl-out"), num_train_epochs=3, per_device_train_batch_size=args.batch,
                       learning_rate=5e-4, lr_scheduler_type="linear", max_grad_norm=1.0, lmbda=0.0, beta=0.0,
                       temperature=1.0, max_length=args.seq, save_strategy="no", report_to=[], logging_steps=1000,
                       use_cpu=True, dataloader_num_workers=0, seed=0, bf16=False, fp16=False),
        train_dataset=_dataset(rows), processing_class=tokenizer)
    collated = trainer.data_collator(rows)
    tokens = 3 * int((collated["labels"][:, 1:] != -100).sum())
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    return {"system": "trl-gkd", "seconds": round(seconds, 3), "tokens": tokens,
            "tokens_per_s": round(tokens / seconds, 1), "peak_rss_mb": peak_rss_mb()}


def same_batch_kl(args) -> dict:
    """Forward KL of the untrained student against the teacher on the first 8 train rows, by both libraries."""
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    import torch
    from trl.experimental.gkd import GKDTrainer
    from trl.experimental.utils import DataCollatorForChatML

    from distill_core.lm.data import collate, tokenise
    from distill_core.lm.losses import token_losses
    from distill_core.lm.models import load_causal_lm

    teacher, tokenizer = load_causal_lm(WORK / "teacher", torch.device("cpu"))
    student, _ = load_causal_lm(WORK / "student", torch.device("cpu"))
    rows = [json.loads(line) for line in (WORK / "train.jsonl").read_text().splitlines()][: args.batch]
    split = tokenise([{"messages": r["messages"]} for r in rows], tokenizer, args.seq, "batch")
    input_ids, attention, mask = collate(split.ids, split.starts, tokenizer.pad_token_id)
    trl_batch = DataCollatorForChatML(tokenizer=tokenizer, max_length=args.seq)(rows)
    with torch.no_grad():
        z_s = student(input_ids=input_ids, attention_mask=attention).logits
        z_t = teacher(input_ids=input_ids, attention_mask=attention).logits
        ours = token_losses.get("forward_kl")(z_s[:, :-1][mask], z_t[:, :-1][mask]).item()
        t_ids, t_att = trl_batch["input_ids"], trl_batch["attention_mask"]
        zs2 = student(input_ids=t_ids, attention_mask=t_att).logits
        zt2 = teacher(input_ids=t_ids, attention_mask=t_att).logits
        theirs = GKDTrainer.generalized_jsd_loss(zs2[:, :-1], zt2[:, :-1], labels=trl_batch["labels"][:, 1:],
                                                 beta=0.0).item()
        # TRL's loss on Distillery's logits and mask: the two loss implementations on the very same numbers.
        labels = torch.where(mask, input_ids[:, 1:], torch.full_like(input_ids[:, 1:], -100))
        trl_same_logits = GKDTrainer.generalized_jsd_loss(z_s[:, :-1], z_t[:, :-1], labels=labels, beta=0.0).item()
    trl_mask = trl_batch["labels"][:, 1:] != -100
    return {"distillery_forward_kl": ours, "trl_forward_kl_same_logits": trl_same_logits,
            "abs_difference_same_logits": abs(ours - trl_same_logits),
            # End to end each library batches its own way: TRL's ChatML collator left-pads, which moves GPT-2's
            # absolute positions of the shorter rows, so its logits (and KL) differ from the right-padded ones.
            "trl_forward_kl_own_batch": theirs, "abs_difference_own_batch": abs(ours - theirs),
            "same_token_ids": all(torch.equal(a, b[b_mask.bool()]) for a, b, b_mask in zip(
                split.ids, trl_batch["input_ids"], trl_batch["attention_mask"], strict=True)),
            "response_tokens": int(mask.sum()), "trl_response_tokens": int(trl_mask.sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", choices=["build", "offline", "online", "trl", "kl"])
    parser.add_argument("--vocab", type=int, default=8192)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--examples", type=int, default=256)
    parser.add_argument("--seq", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--top-k", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    if args.system:
        WORK.mkdir(parents=True, exist_ok=True)
        result = {"build": lambda: {k: str(v) for k, v in build(args).items()},
                  "offline": lambda: run_distillery("offline", args), "online": lambda: run_distillery("online", args),
                  "trl": lambda: run_trl(args), "kl": lambda: same_batch_kl(args)}[args.system]()
        print("RESULT " + json.dumps(result))
        return
    passthrough = list(sys.argv[1:])
    out: dict[str, list[dict]] = {}
    # The systems alternate, `--rounds` times, so a change in the machine's load hits all of them alike.
    plan = ["build", "kl"] + ["trl", "offline", "online"] * args.rounds
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(Path(p).resolve()) for p in
                                                       os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)}
    for system in plan:
        proc = subprocess.run([sys.executable, __file__, "--system", system, *passthrough], capture_output=True,
                              text=True, cwd=ROOT, env=env)
        line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
        if proc.returncode or not line:
            raise SystemExit(f"{system} failed:\n{proc.stderr[-3000:]}")
        out.setdefault(system, []).append(json.loads(line[0][7:]))
        print(system, out[system][-1], os.getloadavg()[0], flush=True)

    def best(system: str) -> float:  # the least disturbed round
        return max(r["tokens_per_s"] for r in out[system])

    print(json.dumps({"offline_vs_trl": round(best("offline") / best("trl"), 3),
                      "online_vs_trl": round(best("online") / best("trl"), 3),
                      "per_round": [{s: out[s][i]["tokens_per_s"] for s in ("trl", "offline", "online")}
                                    for i in range(args.rounds)]}))


if __name__ == "__main__":
    main()
