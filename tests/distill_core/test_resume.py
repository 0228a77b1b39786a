"""Exact resume: N steps straight equal k steps + a resumed run to N (bitwise on CPU)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from distill_core.checkpointing import checkpoint_path
from distill_core.config import ExperimentConfig
from distill_core.distiller import run
from distill_core.errors import CheckpointError, RunCancelled
from tests.distill_core.conftest import CancelAt, ListSink


@pytest.mark.parametrize("cancel_step", [5, 7])  # mid-epoch, and exactly at the epoch boundary
def test_a_resumed_run_matches_an_uninterrupted_one_bitwise(make_config, tmp_path, cancel_step):
    raw = make_config(train={"epochs": 2, "checkpoint_every": 3, "grad_accumulation": 1})
    straight = ListSink()
    run(ExperimentConfig.from_dict({**raw, "output_dir": str(tmp_path / "a")}), sink=straight)

    config_b = ExperimentConfig.from_dict({**raw, "output_dir": str(tmp_path / "b")})
    with pytest.raises(RunCancelled):
        cancel = CancelAt(cancel_step)
        run(config_b, sink=cancel, should_cancel=cancel.should_cancel)
    assert checkpoint_path(tmp_path / "b").is_file()
    resumed = ListSink()
    results = run(config_b, sink=resumed)

    assert results["resumed_from"] == cancel_step and resumed.of("start")[0]["resumed_from"] == cancel_step
    after = [(p["step"], p["metrics"]) for p in resumed.of("step")]
    assert [s for s, _ in after] == list(range(cancel_step + 1, 15))
    assert after == [(p["step"], p["metrics"]) for p in straight.of("step") if p["step"] > cancel_step]
    a, b = load_file(str(tmp_path / "a" / "model.safetensors")), load_file(str(tmp_path / "b" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not checkpoint_path(tmp_path / "b").exists()  # removed once the run succeeded


def test_a_checkpoint_of_another_config_is_refused(make_config, tmp_path):
    config = ExperimentConfig.from_dict(make_config(output_dir=str(tmp_path / "out")))
    with pytest.raises(RunCancelled):
        cancel = CancelAt(2)
        run(config, sink=cancel, should_cancel=cancel.should_cancel)
    changed = ExperimentConfig.from_dict(make_config(kd={"temperature": 5.0}, output_dir=str(tmp_path / "out")))
    with pytest.raises(CheckpointError, match="another config") as err:
        run(changed)
    assert err.value.field == "output_dir"
    run(changed, resume=False)  # starting over is always possible


def test_gradient_accumulation_counts_optimisation_steps(make_config):
    sink = ListSink()
    run(ExperimentConfig.from_dict(make_config(train={"epochs": 1, "grad_accumulation": 3}, output_dir=None)),
        sink=sink)
    assert sink.of("start")[0]["steps_per_epoch"] == 3  # 7 batches of 32 -> 3 steps of up to 3 batches
    assert [p["step"] for p in sink.of("step")] == [1, 2, 3]


def test_early_stopping_ends_the_run_after_patience_evaluations(make_config):
    raw = make_config(train={"epochs": 20, "eval_every": 1, "early_stopping_patience": 2, "learning_rate": 1e-9},
                      output_dir=None)
    sink = ListSink()
    results = run(ExperimentConfig.from_dict(raw), sink=sink)
    assert results["stopped_early"] is True
    assert results["steps"] == 3  # the first evaluation sets the best; two without improvement stop it


def test_bf16_autocast_runs_on_the_cpu(make_config):
    results = run(ExperimentConfig.from_dict(make_config(train={"epochs": 1, "amp": "bf16"}, output_dir=None)))
    assert 0.0 <= results["student"]["accuracy"] <= 1.0


def test_fp16_needs_cuda(make_config):
    from distill_core.errors import ConfigError

    with pytest.raises(ConfigError, match="needs a CUDA device"):
        run(ExperimentConfig.from_dict(make_config(train={"amp": "fp16", "device": "cpu"})))


class RefuseCheckpoint(ListSink):
    """A sink that forbids the run's checkpoints, as the worker's does once its claim is lost."""

    def emit(self, kind: str, payload: dict) -> None:
        super().emit(kind, payload)
        if kind == "checkpoint":
            raise PermissionError("refused the checkpoint")


def test_the_checkpoint_event_comes_before_the_file_is_renamed_into_place(make_config, tmp_path):
    out = tmp_path / "out"
    on_disk: list[tuple[int, int | None]] = []

    class Watch(ListSink):
        def emit(self, kind: str, payload: dict) -> None:
            super().emit(kind, payload)
            if kind == "checkpoint":
                path = checkpoint_path(out)
                on_disk.append((payload["step"], torch.load(path, weights_only=False)["step"]
                                if path.is_file() else None))
            if kind == "export":
                assert not (out / "model.safetensors").exists()

    run(ExperimentConfig.from_dict(make_config(train={"epochs": 1, "checkpoint_every": 3}, output_dir=str(out))),
        sink=Watch())
    assert on_disk == [(3, None), (6, 3), (7, 6)]  # the file still holds the previous checkpoint


def test_a_refused_checkpoint_stops_the_run_and_leaves_the_output_directory_as_it_was(make_config, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("kept", encoding="utf-8")
    with pytest.raises(PermissionError, match="refused the checkpoint"):
        run(ExperimentConfig.from_dict(make_config(train={"checkpoint_every": 2}, output_dir=str(out))),
            sink=RefuseCheckpoint())
    assert sorted(p.name for p in out.rglob("*")) == ["notes.txt"]


def test_removing_the_checkpoint_also_removes_the_temp_files_of_killed_attempts(tmp_path):
    from distill_core import checkpointing

    path = checkpoint_path(tmp_path)
    checkpointing.save(path, {"step": 3})
    (path.parent / ".last-killed.pt").write_bytes(b"half a checkpoint")
    checkpointing.remove(path)
    assert list(tmp_path.iterdir()) == []
