"""Data-parallel runs (parallel.py): 2 gloo processes on the CPU compute what 1 process does with the same batch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from distill_core import parallel
from distill_core.checkpointing import checkpoint_path
from distill_core.config import ExperimentConfig
from distill_core.distiller import run
from distill_core.errors import ConfigError
from tests.distill_core.conftest import ListSink

REPO = Path(__file__).resolve().parents[2]
TEXTCNN = {"type": "textcnn", "embedding_dim": 16, "options": {"num_filters": 8, "dropout": 0.0}}
# A 1-layer transformer on the teacher's tokens with hidden, embedding and attention matches (tokens, pairs).
TRANSFORMER = {"type": "transformer", "vocab": "teacher",
               "options": {"preset": "custom", "layers": 1, "hidden": 16, "heads": 2, "ffn": 32, "dropout": 0.0}}
MATCHES = [
    {"layer_T": 2, "layer_S": 1, "feature": "hidden", "loss": "hidden_mse", "weight": 1.0, "proj": ["linear", 16, 32]},
    {"layer_T": 0, "layer_S": 0, "feature": "embedding", "loss": "embedding_mse", "weight": 1.0,
     "proj": ["linear", 16, 32]},
    {"layer_T": 1, "layer_S": 0, "feature": "attention", "loss": "attention_mse", "weight": 1.0},
]


def torchrun(config: dict, tmp_path: Path, name: str, nproc: int = 2, env: dict | None = None,
             wait: bool = True) -> subprocess.Popen | subprocess.CompletedProcess:
    """`python -m distill_core run <config> --nproc N --metrics ...` in a subprocess (it starts torchrun)."""
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(config))
    argv = [sys.executable, "-m", "distill_core", "run", str(path), "--nproc", str(nproc),
            "--metrics", str(tmp_path / f"{name}.jsonl"), "--results", str(tmp_path / f"{name}-results.json")]
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), **(env or {})}
    if not wait:
        return subprocess.Popen(argv, cwd=REPO, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
    return subprocess.run(argv, cwd=REPO, env=full_env, capture_output=True, text=True, timeout=600)


def points(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def assert_same_points(one: list[dict], two: list[dict], rel: float = 1e-5) -> None:
    assert [(p["event"], p["step"]) for p in one] == [(p["event"], p["step"]) for p in two]
    for a, b in zip(one, two, strict=True):
        assert a["metrics"].keys() == b["metrics"].keys(), a["step"]
        for key, value in a["metrics"].items():
            assert b["metrics"][key] == pytest.approx(value, rel=rel, abs=1e-9), (a["event"], a["step"], key)


@pytest.mark.parametrize(("student", "matches", "train"), [
    (TEXTCNN, [], {"batch_size": 32}),  # 200 examples: 6 batches of 32, the last of 8 (4 per rank)
    (TRANSFORMER, MATCHES, {"batch_size": 30, "grad_accumulation": 2}),  # the last batch of 20, in one group of 3
], ids=["textcnn", "transformer-matches"])
@pytest.mark.slow
def test_two_processes_compute_what_one_does_with_the_same_global_batch(make_config, tmp_path, student, matches,
                                                                         train):
    raw = make_config(student=student, matches=matches, train=train, output_dir=None)
    alone = ListSink()
    results = run(ExperimentConfig.from_dict(raw), sink=alone)
    one = [{"event": kind, **p} for kind, p in alone.events if kind in ("step", "eval")]

    done = torchrun(raw, tmp_path, "two")
    assert done.returncode == 0, done.stdout + done.stderr
    two = points(tmp_path / "two.jsonl")
    assert len([p for p in two if p["event"] == "step"]) == results["steps"] > 0
    assert_same_points(one, two)
    two_results = json.loads((tmp_path / "two-results.json").read_text())
    for key in ("accuracy", "macro_f1"):
        assert two_results["student"][key] == results["student"][key]
    assert two_results["best_dev"] == results["best_dev"]


@pytest.mark.slow
def test_a_rank_resumes_at_another_world_size_and_a_killed_rank_ends_the_run(make_config, tmp_path):
    """Kill rank 1 mid-run: torchrun ends every rank; the checkpoint resumes on 2 or on 1 process to the same weights."""
    raw = make_config(student=TEXTCNN, train={"epochs": 4, "checkpoint_every": 2})
    straight = torchrun({**raw, "output_dir": str(tmp_path / "straight")}, tmp_path, "straight")
    assert straight.returncode == 0, straight.stderr
    expected = load_file(str(tmp_path / "straight" / "model.safetensors"))

    for resume_on in (2, 1):
        out = tmp_path / f"killed-{resume_on}"
        config = {**raw, "output_dir": str(out)}
        tag = f"ddp-test-{resume_on}-{os.getpid()}"
        proc = torchrun(config, tmp_path, f"killed-{resume_on}", env={"DDP_TEST_TAG": tag}, wait=False)
        deadline = time.monotonic() + 300
        while not checkpoint_path(out).is_file():
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(rank_pid(tag, 1), signal.SIGKILL)
        output = proc.communicate(timeout=120)[0].decode()
        assert proc.returncode != 0 and not (out / "model.safetensors").exists(), output
        assert checkpoint_path(out).is_file()
        resumed = torchrun(config, tmp_path, f"resumed-{resume_on}", nproc=resume_on)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert json.loads((tmp_path / f"resumed-{resume_on}-results.json").read_text())["resumed_from"] > 0
        weights = load_file(str(out / "model.safetensors"))
        for key, value in expected.items():
            torch.testing.assert_close(weights[key], value, rtol=1e-5, atol=1e-6, msg=f"{key} ({resume_on})")


def rank_pid(tag: str, rank: int) -> int:
    """The process of torchrun rank `rank` among the processes started with DDP_TEST_TAG=tag."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = dict(item.split("=", 1) for item in (entry / "environ").read_text().split("\0") if "=" in item)
        except OSError:
            continue
        if env.get("DDP_TEST_TAG") == tag and env.get("RANK") == str(rank) and "TORCHELASTIC_RUN_ID" in env:
            return int(entry.name)
    raise AssertionError(f"no rank {rank} process for {tag}")


@pytest.mark.slow
def test_the_failing_rank_and_its_error_end_the_run(make_config, tmp_path):
    raw = make_config(data={"train": str(tmp_path / "missing.tsv")}, output_dir=None)
    done = torchrun(raw, tmp_path, "broken")
    assert done.returncode != 0
    assert "of 2 failed: DatasetError: The train file" in done.stderr and "missing.tsv" in done.stderr


def test_the_global_batch_must_divide_across_the_ranks(make_config, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    config = ExperimentConfig.from_dict(make_config(train={"batch_size": 30}, output_dir=None))
    with pytest.raises(ConfigError, match="batch_size=30 is the global batch and does not divide across 4") as err:
        parallel.setup(config, torch.device("cpu"))
    assert err.value.field == "train.batch_size"


def test_shards_split_each_global_batch_in_order_and_their_shares_sum_to_one():
    lengths = torch.tensor([5, 3, 7, 2, 9, 4, 1])
    index = torch.tensor([6, 0, 4, 2, 1])
    kinds = {"h": "tokens", "a": "pairs"}
    pieces, totals = [], {"": 0.0, "h": 0.0, "a": 0.0}
    for rank in range(2):
        local, stand_in = parallel.shard(index, parallel.Group(rank, 2, rank, "gloo"))
        pieces.append(local)
        for key, value in parallel.shares(lengths, index, local, stand_in, kinds).items():
            totals[key] += value
    assert torch.cat(pieces).tolist() == index.tolist()  # the one-process order, cut in two
    assert totals == pytest.approx({"": 1.0, "h": 1.0, "a": 1.0})
    # A batch smaller than the world: the rank without examples trains on a stand-in with no weight.
    local, stand_in = parallel.shard(torch.tensor([3]), parallel.Group(1, 2, 1, "gloo"))
    assert stand_in and local.tolist() == [3]
    assert parallel.shares(lengths, torch.tensor([3]), local, stand_in, kinds) == {"": 0.0, "h": 0.0, "a": 0.0}
