"""Data-parallel scaling on the CPU: training samples/s of 1 vs N gloo processes (distill_core/parallel.py).

    .venv/bin/python bench/ddp_scaling.py                      # textcnn and t4tiny, 1 and 2 processes
    .venv/bin/python bench/ddp_scaling.py --setups textcnn --nproc 1 2 4

Each run is `python -m distill_core run config.json --nproc N` (torchrun for N > 1) with the same
config: the same global batch, data, epochs and teacher (seeded random weights: bench/throughput.py's
prepare_teacher; its logits are computed before training and are not timed). Every process gets
one thread (OMP_NUM_THREADS=1), so N processes could at best be N times one process's speed if N
cores were free. Samples/s = training examples x epochs / rank 0's training seconds (the
`training` phase, which includes the per-epoch dev evaluations, sharded over the ranks).
Scaling efficiency = (samples/s with N) / (N x samples/s with 1). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402
import throughput  # noqa: E402

SETUPS = {  # student, teacher shape, training titles, epochs, global batch
    "textcnn": {"student": {"type": "textcnn", "vocab": "char",
                            "options": {"filter_sizes": [2, 3, 4], "num_filters": 128}},
                "teacher": "demo", "examples": 2000, "epochs": 2, "batch_size": 64, "lr": 1e-3},
    "t4tiny": {"student": {"type": "transformer", "vocab": "teacher", "options": {"preset": "T4-tiny"}},
               "teacher": "demo", "examples": 512, "epochs": 1, "batch_size": 32, "lr": 1e-4},
}


def config_for(name: str) -> dict:
    setup = SETUPS[name]
    paths = throughput.prepare_data(setup["examples"], 64)
    teacher = throughput.prepare_teacher(setup["teacher"])
    return {"name": f"ddp-{name}", "seed": 1,
            "data": {**paths, "labels": common.LABELS, "max_length": 32},
            "teacher": {"path": teacher["path"]}, "student": setup["student"], "kd": {"temperature": 2.0},
            "train": {"epochs": setup["epochs"], "batch_size": setup["batch_size"], "learning_rate": setup["lr"],
                      "log_every": 10, "checkpoint_every": 10**6, "device": "cpu"}}


def run_once(name: str, nproc: int) -> dict:
    out = common.VAR / "ddp-scaling" / f"{name}-{nproc}"
    out.mkdir(parents=True, exist_ok=True)
    config = config_for(name)
    (out / "config.json").write_text(json.dumps(config))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(common.ROOT)}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "distill_core", "run", str(out / "config.json"), "--nproc", str(nproc),
                    "--fresh", "--results", str(out / "results.json"), "--cache-dir", str(common.VAR / "ddp-cache")],
                   cwd=common.ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = json.loads((out / "results.json").read_text())
    samples = results["examples"]["train"] * SETUPS[name]["epochs"]
    return {"nproc": nproc, "training_seconds": results["seconds"]["training"],
            "samples_per_s": round(samples / results["seconds"]["training"], 1),
            "wall_seconds": round(time.perf_counter() - started, 1),
            "test_accuracy": round(results["student"]["accuracy"], 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setups", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    parser.add_argument("--nproc", nargs="+", type=int, default=[1, 2])
    args = parser.parse_args()
    report: dict = {"cpus": os.cpu_count(), "load_before": os.getloadavg(), "setups": {}}
    for name in args.setups:
        runs = [run_once(name, n) for n in args.nproc]
        base = next((r["samples_per_s"] for r in runs if r["nproc"] == 1), None)
        for r in runs:
            r["efficiency"] = round(r["samples_per_s"] / (r["nproc"] * base), 3) if base else None
        report["setups"][name] = runs
    report["load_after"] = os.getloadavg()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
