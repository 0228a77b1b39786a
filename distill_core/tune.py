"""Tune KD: short trial runs over a small grid pick the KD settings, then the full run uses the winner.

    tune_and_run(config, sink, should_cancel, engine=distiller, resume=..., cache_dir=..., hub_cache=...) -> results

`config.tune` (config.py) gives the grid (temperatures x alphas x losses, in that nesting order) and
each trial's budget (`steps` optimisation steps). A trial is the run itself (distiller.run) with the
trial's temperature, alpha and loss, `train.max_steps = steps`, four dev evaluations, no test split
(the test split is never looked at while choosing) and no checkpoints. Its score is its best dev
`tune.metric` (train.best_metric when unset). The highest score wins; ties go to the earlier trial in
grid order, so the choice is deterministic. The full run then starts from scratch with the winner's
settings and reports them, every trial and the reason in `results["tuning"]`.

Events, besides the full run's (distiller.py):
    tune        {"trials": [settings, ...], "steps", "metric"}                once, before the first trial
    trial       {"index", "status": "running" | "succeeded" | "failed", "settings", "steps", "score",
                 "metrics", "error"}                                           as each trial starts and ends
    trial_step  {"trial", "step", "metrics"}                                   a trial's training points
    trial_eval  {"trial", "step", "metrics"}                                   a trial's dev evaluations
    tune_choice {"winner", "settings", "score", "metric", "explanation"}       before the full run starts
Phase events of a trial pass through with the trial named in their label.

Resume: with `config.output_dir`, every finished trial is written to tune.json there; a resumed run
(`resume=True`) re-emits those trials' `trial` events without running them again and runs only the
rest (a trial cut short by a kill is redone from its start: trials keep no checkpoint, and a trial is
seeded by the run's seed, so the redo gives the same score). Cancelling stops the current trial
(RunCancelled). A trial that fails with a TrainingError (e.g. a loss that is not finite) is recorded
as failed and tuning goes on; any other error fails the run, since every trial would hit it.
"""

from __future__ import annotations

import itertools
import json
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from distill_core import checkpointing, storage
from distill_core.config import ExperimentConfig
from distill_core.errors import TrainingError

log = logging.getLogger(__name__)
STATE_FILE = "tune.json"
EVALS_PER_TRIAL = 4


def grid(config: ExperimentConfig) -> list[dict[str, Any]]:
    """The trials' settings in grid order: temperature, then alpha, then loss."""
    u = config.tune
    return [{"temperature": float(t), "alpha": float(a), "loss": loss}
            for t, a, loss in itertools.product(u.temperatures, u.alphas, u.losses)]


def trial_config(config: ExperimentConfig, settings: dict[str, Any]) -> ExperimentConfig:
    """The short run that scores `settings`: dev only, `tune.steps` steps, no checkpoint, no export."""
    raw = config.to_dict()
    steps = config.tune.steps
    raw["name"] = f"{config.name} / trial {label(settings)}"
    raw["tune"] = {**raw["tune"], "enabled": False}
    raw["kd"].update(settings)
    raw["data"]["test"] = None
    raw["output_dir"] = None
    raw["train"].update(epochs=1000, max_steps=steps, eval_every=max(1, steps // EVALS_PER_TRIAL),
                        early_stopping_patience=0, best_metric=metric_of(config))
    return ExperimentConfig.from_dict(raw)


def final_config(config: ExperimentConfig, settings: dict[str, Any]) -> ExperimentConfig:
    raw = config.to_dict()
    raw["tune"] = {**raw["tune"], "enabled": False}
    raw["kd"].update(settings)
    return ExperimentConfig.from_dict(raw)


def metric_of(config: ExperimentConfig) -> str:
    return config.tune.metric or config.train.best_metric


def label(settings: dict[str, Any]) -> str:
    return f"T = {settings['temperature']:g}, alpha = {settings['alpha']:g}, {settings['loss']}"


def choose(trials: list[dict[str, Any]]) -> int:
    """Index of the best succeeded trial: highest score, the earlier one on a tie."""
    done = [t for t in trials if t["status"] == "succeeded"]
    if not done:
        raise TrainingError("Every tune-KD trial failed: " + "; ".join(
            f"{label(t['settings'])}: {t.get('error') or 'no score'}" for t in trials))
    return max(done, key=lambda t: (t["score"], -t["index"]))["index"]


def explain(trials: list[dict[str, Any]], winner: int, metric: str, steps: int) -> str:
    """One sentence: the winner, its dev score and its margin over the next best trial."""
    best = trials[winner]
    done = sorted((t for t in trials if t["status"] == "succeeded" and t["index"] != winner),
                  key=lambda t: (-t["score"], t["index"]))
    name = "dev accuracy" if metric == "accuracy" else "dev macro-F1"
    head = f"{label(best['settings'])}: {name} {_points(best['score'])}"
    failed = sum(t["status"] == "failed" for t in trials)
    tail = f" ({len(trials)} trials of {steps} steps" + (f", {failed} failed" if failed else "") + ")."
    if not done:
        return f"{head}, the only trial that finished{tail}"
    runner = done[0]
    margin = 100 * (best["score"] - runner["score"])
    tie = " (a tie: the earlier trial in the grid wins)" if margin == 0 else ""
    return (f"{head}, {margin:+.2f} dev points over the next best, {label(runner['settings'])} "
            f"({_points(runner['score'])}){tie}{tail}")


def _points(score: float) -> str:
    return f"{100 * score:.2f}"


class _TrialSink:
    """Forwards a trial's events to the run's sink under trial_* names (its own start/result stay inside)."""

    def __init__(self, sink: Any, index: int, total: int, settings: dict[str, Any]):
        self.sink, self.index = sink, index
        self.prefix = f"Trial {index + 1}/{total} ({label(settings)})"

    def emit(self, kind: str, payload: dict[str, Any]) -> None:
        if kind == "step":
            self.sink.emit("trial_step", {"trial": self.index, "step": payload["step"], "metrics": payload["metrics"]})
        elif kind == "eval" and payload.get("split", "dev") == "dev":
            self.sink.emit("trial_eval", {"trial": self.index, "step": payload["step"], "metrics": payload["metrics"]})
        elif kind == "phase":
            self.sink.emit("phase", {**payload, "label": f"{self.prefix}: {payload.get('label') or payload['name']}"})


class _ResultSink:
    """The full run's sink: adds the tuning record to the `result` event before passing it on."""

    def __init__(self, sink: Any, tuning: dict[str, Any]):
        self.sink, self.tuning = sink, tuning

    def emit(self, kind: str, payload: dict[str, Any]) -> None:
        if kind == "result":
            payload["tuning"] = self.tuning
        self.sink.emit(kind, payload)


def tune_and_run(config: ExperimentConfig, sink: Any = None, should_cancel: Callable[[], bool] | None = None, *,
                 engine: ModuleType, resume: bool = True, cache_dir: str | Path | None = None,
                 hub_cache: str | Path | None = None) -> dict[str, Any]:
    """Run the trials (those tune.json does not already hold), pick the winner, run it in full.

    `engine` is distill_core.distiller, handed in by its `run` (as for finetune: no import back).
    """
    NullSink, run = engine.NullSink, engine.run

    sink = sink or NullSink()
    if cache_dir is None:  # the trials and the full run share the teacher's outputs
        with tempfile.TemporaryDirectory(prefix="distillery-tune-") as tmp:
            return tune_and_run(config, sink, should_cancel, engine=engine, resume=resume, cache_dir=tmp,
                                hub_cache=hub_cache)
    settings = grid(config)
    metric, steps = metric_of(config), config.tune.steps
    state_path = Path(config.output_dir) / STATE_FILE if config.output_dir else None
    raw = config.to_dict()
    fingerprint = checkpointing.fingerprint({**raw, "tune_grid": raw["tune"]})  # `tune` itself is neutral there
    stored = _load_state(state_path, fingerprint) if resume else {}
    started = time.monotonic()
    sink.emit("tune", {"trials": settings, "steps": steps, "metric": metric})
    log.info("Tune KD: %d trials of %d steps on the dev split, scored by dev %s", len(settings), steps, metric)
    trials: list[dict[str, Any]] = []
    for index, trial_settings in enumerate(settings):
        record = stored.get(str(index))
        if record is None or record.get("settings") != trial_settings:
            record = _run_trial(config, index, trial_settings, sink, should_cancel, cache_dir, hub_cache, run)
            _save_state(state_path, fingerprint, trials + [record])
        else:
            log.info("Tune KD: trial %d (%s) was finished before the resume: %s", index + 1, label(trial_settings),
                     record["status"])
        sink.emit("trial", record)
        trials.append(record)
    winner = choose(trials)
    explanation = explain(trials, winner, metric, steps)
    chosen = trials[winner]["settings"]
    sink.emit("tune_choice", {"winner": winner, "settings": chosen, "score": trials[winner]["score"],
                              "metric": metric, "explanation": explanation})
    log.info("Tune KD chose %s", explanation)
    tuning = {"trials": trials, "winner": winner, "settings": chosen, "metric": metric, "steps": steps,
              "explanation": explanation, "seconds": round(time.monotonic() - started, 1)}
    return run(final_config(config, chosen), _ResultSink(sink, tuning), should_cancel, resume=resume,
               cache_dir=cache_dir, hub_cache=hub_cache)


def _run_trial(config: ExperimentConfig, index: int, settings: dict[str, Any], sink: Any,
               should_cancel: Callable[[], bool] | None, cache_dir: str | Path, hub_cache: str | Path | None,
               run: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    record: dict[str, Any] = {"index": index, "status": "running", "settings": settings, "steps": 0,
                              "score": None, "metrics": {}, "error": ""}
    sink.emit("trial", dict(record))
    log.info("Tune KD: trial %d/%d, %s", index + 1, len(grid(config)), label(settings))
    metric, started = metric_of(config), time.monotonic()
    try:
        results = run(trial_config(config, settings), _TrialSink(sink, index, len(grid(config)), settings),
                      should_cancel, resume=False, cache_dir=cache_dir, hub_cache=hub_cache)
    except TrainingError as exc:  # these settings diverge: a result, not the run's failure
        log.info("Tune KD: trial %d failed: %s", index + 1, exc)
        return {**record, "status": "failed", "error": str(exc), "seconds": round(time.monotonic() - started, 1)}
    best = results["best_dev"]
    log.info("Tune KD: trial %d, %s: best dev %s %.4f", index + 1, label(settings), metric, best[metric])
    return {**record, "status": "succeeded", "steps": results["steps"], "score": best[metric],
            "metrics": {k: best[k] for k in ("accuracy", "macro_f1", "step")},
            "seconds": round(time.monotonic() - started, 1)}


def _load_state(path: Path | None, fingerprint: str) -> dict[str, dict[str, Any]]:
    if path is None or not path.exists():
        return {}
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        log.warning("Tune KD: %s is unreadable; running every trial again", path)
        return {}
    if state.get("fingerprint") != fingerprint:
        return {}  # another config's trials
    return {str(t["index"]): t for t in state.get("trials", []) if t.get("status") in ("succeeded", "failed")}


def _save_state(path: Path | None, fingerprint: str, trials: list[dict[str, Any]]) -> None:
    if path is None:
        return
    tmp = path.with_suffix(".json.tmp")
    with storage.writing(path.parent, "output directory"):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps({"fingerprint": fingerprint, "trials": trials}, indent=1), encoding="utf-8")
        tmp.replace(path)
