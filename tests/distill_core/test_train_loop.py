"""The loop both trainers share (distill_core/train_loop.py): early stopping across stages, for classifier and
causal-LM runs alike.

A learning rate of 1e-30 leaves the student as it is (the least it may be: the option refuses 0), so every dev
evaluation after a stage's first one ties with its best, and a patience of 1 stops the stage at its second one.
"""

from __future__ import annotations

from distill_core.config import ExperimentConfig
from distill_core.distiller import run
from tests.distill_core import test_lm_run
from tests.distill_core.conftest import ListSink

lm_files, lm_config = test_lm_run.lm_files, test_lm_run.lm_config  # the tiny GPT-2/Llama fixtures

STAGES = [{"name": "a", "epochs": 3}, {"name": "b", "epochs": 3}]
STOP_AT_SECOND_EVAL = {"eval_every": 1, "early_stopping_patience": 1, "learning_rate": 1e-30}


def _check_the_early_stops(sink: ListSink, results: dict, steps_per_epoch: int) -> None:
    """An evaluation every step: stage a stops at step 2 and its epochs are skipped; stage b starts with a fresh best, stops at its second
    evaluation, and, being the last stage, ends the run."""
    b = 3 * steps_per_epoch  # stage b's first step is the one after stage a's last
    start = sink.of("start")[0]
    assert start["stages"] == ["a", "b"] and start["total_steps"] == 2 * b
    assert [(p["step"], p["stage"]) for p in sink.of("step")] == [(1, 0), (2, 0), (b + 1, 1), (b + 2, 1)]
    dev = [(p["step"], p["stage"]) for p in sink.of("eval") if p["split"] == "dev"]
    assert dev == [(1, 0), (2, 0), (b + 1, 1), (b + 2, 1)]
    assert results["stopped_early"] is True and results["steps"] == b + 2
    # Stage b's first evaluation only ties with stage a's best: it is kept because each stage starts afresh.
    assert results["best_dev"]["step"] == b + 1


def test_a_classifier_stage_that_stops_early_hands_over_to_the_next_and_the_last_ends_the_run(make_config):
    sink = ListSink()
    raw = make_config(stages=STAGES, train=STOP_AT_SECOND_EVAL, output_dir=None)
    results = run(ExperimentConfig.from_dict(raw), sink=sink)
    _check_the_early_stops(sink, results, steps_per_epoch=7)  # 200 examples / 32


def test_an_lm_stage_that_stops_early_hands_over_to_the_next_and_the_last_ends_the_run(lm_config):
    sink = ListSink()
    raw = lm_config(stages=STAGES, train=STOP_AT_SECOND_EVAL, output_dir=None)
    results = run(ExperimentConfig.from_dict(raw), sink=sink)
    _check_the_early_stops(sink, results, steps_per_epoch=6)  # 48 examples / 8
