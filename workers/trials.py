"""Write tune-KD trials (distill_core/tune.py events) as TuneTrial rows, the experiment's child runs.

    tune        -> one PENDING row per grid entry (rows a resumed run already finished stay as they are)
    trial       -> RUNNING (its curve starts over), then SUCCEEDED / FAILED with its score or error
    trial_step  -> the trial's train/loss curve, kept in memory and stored with the next write
    trial_eval  -> its dev curve; stored at once (four per trial), so a running trial's curve moves
    tune_choice -> `chosen` and the explanation on the winner

Every write is fenced like the sink's own: `fence()` runs first in the same transaction and raises
ClaimLost, writing nothing, once this claim no longer holds the run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import transaction

from webapp.experiments.trials import TuneTrial

EVENTS = ("tune", "trial", "trial_step", "trial_eval", "tune_choice")
CURVE_KEYS = ("train/loss", "dev/accuracy", "dev/macro_f1")


class TrialRecorder:
    def __init__(self, experiment_id: int, fence: Callable[[], None], retry: Callable[[Callable[[], Any]], Any]):
        self.experiment_id = experiment_id
        self.fence, self.retry = fence, retry
        self.curves: dict[int, dict[str, list[list[float]]]] = {}
        self.metric = "accuracy"
        self.steps = 0

    def handle(self, kind: str, payload: dict[str, Any]) -> None:
        if kind == "tune":
            self.metric, self.steps = payload["metric"], int(payload["steps"])
            self._write(lambda: self._create(payload["trials"]))
        elif kind == "trial_step":
            self._point(payload, "train", ("loss",))
        elif kind == "trial_eval":
            self._point(payload, "dev", ("accuracy", "macro_f1"))
            index = int(payload["trial"])
            curve = self.curves[index]
            self._write(lambda: self._rows().filter(index=index).update(curve=curve))
        elif kind == "trial":
            self._write(lambda: self._finish(payload))
        elif kind == "tune_choice":
            self._write(lambda: self._choose(payload))

    def _rows(self):
        return TuneTrial.objects.filter(experiment_id=self.experiment_id)

    def _write(self, fn: Callable[[], Any]) -> None:
        def write() -> None:
            with transaction.atomic():
                self.fence()
                fn()

        self.retry(write)

    def _create(self, grid: list[dict[str, Any]]) -> None:
        rows = self._rows()
        rows.filter(index__gte=len(grid)).delete()  # a grid from an earlier config that was longer
        for index, settings in enumerate(grid):
            trial, created = rows.get_or_create(experiment_id=self.experiment_id, index=index,
                                                defaults={**settings, "steps": self.steps, "metric": self.metric})
            if not created and (trial.temperature, trial.alpha, trial.loss) != (
                    settings["temperature"], settings["alpha"], settings["loss"]):
                rows.filter(pk=trial.pk).update(**settings, status=TuneTrial.Status.PENDING, steps=self.steps,
                                                score=None, metrics={}, curve={}, error="")
        rows.update(chosen=False, explanation="")

    def _point(self, payload: dict[str, Any], prefix: str, names: tuple[str, ...]) -> None:
        curve = self.curves.setdefault(int(payload["trial"]), {key: [] for key in CURVE_KEYS})
        for name in names:
            value = payload["metrics"].get(name)
            if isinstance(value, (int, float)) and value == value:  # no NaN in a JSON column
                curve[f"{prefix}/{name}"].append([int(payload["step"]), float(value)])

    def _finish(self, record: dict[str, Any]) -> None:
        index = int(record["index"])
        status = {"running": TuneTrial.Status.RUNNING, "succeeded": TuneTrial.Status.SUCCEEDED,
                  "failed": TuneTrial.Status.FAILED}[record["status"]]
        fields: dict[str, Any] = {"status": status, "score": record.get("score"), "metrics": record.get("metrics") or {},
                                  "error": (record.get("error") or "")[:2000], "metric": self.metric,
                                  "steps": record.get("steps") or self.steps, **record["settings"]}
        if status == TuneTrial.Status.RUNNING:
            self.curves[index] = {key: [] for key in CURVE_KEYS}
            fields["curve"] = self.curves[index]
        elif index in self.curves:  # run here; a trial finished before a resume keeps its stored curve
            fields["curve"] = self.curves.pop(index)
        self._rows().update_or_create(experiment_id=self.experiment_id, index=index, defaults=fields)

    def _choose(self, choice: dict[str, Any]) -> None:
        rows = self._rows()
        rows.update(chosen=False, explanation="")
        rows.filter(index=int(choice["winner"])).update(chosen=True, explanation=choice["explanation"])
