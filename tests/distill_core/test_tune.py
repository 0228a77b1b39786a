"""Tune KD (distill_core/tune.py): trials on dev, a deterministic choice, resume, cancel and failures."""

from __future__ import annotations

import json

import pytest

from distill_core import distiller, tune
from distill_core.config import ExperimentConfig
from distill_core.distiller import run
from distill_core.errors import ConfigError, RunCancelled, TrainingError
from tests.distill_core.conftest import ListSink

GRID = {"enabled": True, "temperatures": [1.0, 4.0], "alphas": [0.1, 0.9], "losses": ["kl"], "steps": 12}


def tuned(make_config, **tune_options) -> ExperimentConfig:
    return ExperimentConfig.from_dict(make_config(tune={**GRID, **tune_options}))


def test_tuning_runs_every_trial_on_dev_and_the_full_run_uses_the_best(make_config):
    sink = ListSink()
    results = run(tuned(make_config), sink=sink)
    ends = [t for t in sink.of("trial") if t["status"] != "running"]
    assert [t["settings"] for t in ends] == tune.grid(tuned(make_config))
    assert all(t["status"] == "succeeded" and t["steps"] == 12 for t in ends)
    scores = [t["score"] for t in ends]
    winner = max(range(len(scores)), key=lambda i: (scores[i], -i))  # highest, earliest on a tie
    tuning = results["tuning"]
    assert tuning["winner"] == winner and tuning["settings"] == ends[winner]["settings"]
    assert sink.of("tune_choice")[0]["explanation"] == tuning["explanation"]
    assert tuning["explanation"].startswith(tune.label(ends[winner]["settings"]))
    # every trial reports its curve; no trial ever evaluates on test (only the full run does, once)
    assert {p["trial"] for p in sink.of("trial_step")} == {0, 1, 2, 3}
    assert all(max(p["step"] for p in sink.of("trial_eval") if p["trial"] == i) == 12 for i in range(4))
    assert [e["split"] for e in sink.of("eval")].count("test") == 1
    exported = json.loads(results["export_dir"] and open(f"{results['export_dir']}/config.json").read())
    assert {k: exported["kd"][k] for k in ("temperature", "alpha", "loss")} == ends[winner]["settings"]
    assert exported["tune"]["enabled"] is False


def test_the_same_config_tunes_to_the_same_scores_and_winner(make_config, tmp_path):
    first = run(tuned(make_config, steps=10), resume=False)["tuning"]
    raw = make_config(tune={**GRID, "steps": 10}, output_dir=str(tmp_path / "again"))
    second = run(ExperimentConfig.from_dict(raw), resume=False)["tuning"]
    assert [t["score"] for t in first["trials"]] == [t["score"] for t in second["trials"]]
    assert first["winner"] == second["winner"]


def test_choice_breaks_ties_by_grid_order_and_explains_the_margin():
    def trial(i, score, status="succeeded"):
        return {"index": i, "status": status, "score": score, "error": "" if score is not None else "loss is nan",
                "settings": {"temperature": 2.0 * (i + 1), "alpha": 0.2, "loss": "kl"}}

    trials = [trial(0, 0.80), trial(1, 0.913), trial(2, 0.913), trial(3, None, "failed"), trial(4, 0.90)]
    assert tune.choose(trials) == 1
    text = tune.explain(trials, 1, "accuracy", 300)
    assert text == ("T = 4, alpha = 0.2, kl: dev accuracy 91.30, +0.00 dev points over the next best, "
                    "T = 6, alpha = 0.2, kl (91.30) (a tie: the earlier trial in the grid wins) "
                    "(5 trials of 300 steps, 1 failed).")
    assert "+1.30 dev points over the next best, T = 10" in tune.explain(
        [trial(0, 0.70), trial(1, 0.913), trial(4, 0.90)], 1, "accuracy", 300)
    with pytest.raises(TrainingError, match="Every tune-KD trial failed: T = 8, alpha = 0.2, kl: loss is nan"):
        tune.choose([trial(3, None, "failed")])


def test_a_diverging_trial_is_recorded_as_failed_and_tuning_goes_on(make_config, monkeypatch):
    real_run = distiller.run

    def run_failing_at_t4(config, *args, **kwargs):
        if not config.tune.enabled and config.data.test is None and config.kd.temperature == 4.0:
            raise TrainingError("The loss is not finite at step 3.")
        return real_run(config, *args, **kwargs)

    monkeypatch.setattr(distiller, "run", run_failing_at_t4)
    sink = ListSink()
    results = distiller.run(tuned(make_config, steps=10), sink=sink)
    statuses = [t["status"] for t in results["tuning"]["trials"]]
    assert statuses == ["succeeded", "succeeded", "failed", "failed"]
    assert results["tuning"]["trials"][2]["error"] == "The loss is not finite at step 3."
    assert results["tuning"]["settings"]["temperature"] == 1.0
    assert "2 failed" in results["tuning"]["explanation"]


class CancelInTrial(ListSink):
    """Cancels once trial `trial` has logged a training step."""

    def __init__(self, trial: int) -> None:
        super().__init__()
        self.trial = trial

    def should_cancel(self) -> bool:
        return any(p["trial"] == self.trial for p in self.of("trial_step"))


def test_cancel_during_tuning_stops_and_a_resume_keeps_the_finished_trials(make_config):
    config = tuned(make_config, steps=10)
    sink = CancelInTrial(1)
    with pytest.raises(RunCancelled):
        run(config, sink=sink, should_cancel=sink.should_cancel)
    assert not sink.of("start") and not sink.of("tune_choice")  # the full run never began
    first = [t for t in sink.of("trial") if t["status"] == "succeeded"]
    assert [t["index"] for t in first] == [0]

    resumed = ListSink()
    results = run(config, sink=resumed)
    assert {p["trial"] for p in resumed.of("trial_step")} == {1, 2, 3}  # trial 0 is not run again
    assert results["tuning"]["trials"][0] == first[0]
    fresh = run(config, sink=ListSink(), resume=False)  # a fresh run redoes them all, to the same scores
    assert [t["score"] for t in fresh["tuning"]["trials"]] == [t["score"] for t in results["tuning"]["trials"]]


@pytest.mark.parametrize("options, field", [
    ({"steps": 5}, "tune.steps"),
    ({"steps": 20_001}, "tune.steps"),
    ({"alphas": [1.5]}, "tune.alphas"),
    ({"temperatures": [0]}, "tune.temperatures"),
    ({"temperatures": [2.0, 2.0]}, "tune.temperatures"),
    ({"losses": ["hinge"]}, "tune.losses"),
    ({"alphas": []}, "tune.alphas"),
    ({"temperatures": [1, 2, 3, 4], "alphas": [0.1, 0.2, 0.3], "losses": ["kl", "mse", "ce", "bce"]},
     "tune.temperatures"),
    ({"metric": "loss"}, "tune.metric"),
])
def test_tune_options_are_validated(make_config, options, field):
    with pytest.raises(ConfigError) as err:
        ExperimentConfig.from_dict(make_config(tune={**GRID, **options}))
    assert err.value.field == field


def test_tuning_is_for_one_stage_distillation_only(make_config):
    with pytest.raises(ConfigError, match="one stage"):
        ExperimentConfig.from_dict(make_config(tune=GRID, stages=[{"epochs": 1}]))
    # off, the rules between options do not apply (the declared bounds do, as for every option)
    ExperimentConfig.from_dict(make_config(tune={**GRID, "enabled": False}, stages=[{"epochs": 1}]))


def test_the_cli_tunes_with_the_configs_grid_and_says_what_it_chose(make_config, tmp_path):
    from tests.distill_core.test_cli import cli

    config = tmp_path / "config.json"
    raw = make_config(tune={"temperatures": [1.0, 4.0], "alphas": [0.5], "steps": 10}, train={"epochs": 1})
    config.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    out = cli("run", str(config), "--tune", "--results", str(tmp_path / "r.json"))
    assert out.returncode == 0, out.stderr
    tuning = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))["tuning"]
    assert len(tuning["trials"]) == 2 and f"tune KD chose {tuning['explanation']}" in out.stderr + out.stdout
    assert "tune trial 1 {'temperature': 1.0, 'alpha': 0.5, 'loss': 'kl'}: succeeded" in out.stderr + out.stdout


def test_checkpoints_ignore_the_tune_section_and_tune_json_does_not(make_config):
    from distill_core import checkpointing

    plain = ExperimentConfig.from_dict(make_config())
    tuned_off = ExperimentConfig.from_dict(make_config(tune={**GRID, "enabled": False}))
    # a run's checkpoint (and one written before `tune` existed) is the same with tuning off or absent
    assert checkpointing.fingerprint(plain.to_dict()) == checkpointing.fingerprint(tuned_off.to_dict())
    before = {k: v for k, v in plain.to_dict().items() if k != "tune"}
    assert checkpointing.fingerprint(before) == checkpointing.fingerprint(plain.to_dict())


def test_a_changed_grid_budget_runs_every_trial_again(make_config):
    small = {"temperatures": [2.0], "alphas": [0.2, 0.8]}
    run(tuned(make_config, steps=10, **small), sink=ListSink())
    again = ListSink()
    run(tuned(make_config, steps=11, **small), sink=again)  # same output_dir, other budget: tune.json is not reused
    assert {p["trial"] for p in again.of("trial_step")} == {0, 1}
    assert all(t["steps"] == 11 for t in again.of("trial") if t["status"] == "succeeded")
