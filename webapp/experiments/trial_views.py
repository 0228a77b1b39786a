"""The tune-KD trials of an experiment, shaped for its page (a table with one small curve per trial).

Curves are drawn server-side as SVG polylines: no script, nothing for the CSP to allow.
"""

from __future__ import annotations

import math
from typing import Any

from webapp.experiments.models import Experiment
from webapp.experiments.trials import TuneTrial

WIDTH, HEIGHT = 160, 36


def tuning_context(experiment: Experiment) -> dict[str, Any] | None:
    """{"trials": [...], "choice": explanation or None, "metric", "steps"}; None without trials."""
    trials = list(TuneTrial.objects.filter(experiment=experiment))
    if not trials:
        return None
    chosen = next((t for t in trials if t.chosen), None)
    return {
        "trials": [{"trial": t, "loss_points": polyline(t.curve.get("train/loss")),
                    "dev_points": polyline(t.curve.get(f"dev/{t.metric}"))} for t in trials],
        "choice": chosen.explanation if chosen else None,
        "metric": "dev accuracy" if trials[0].metric == "accuracy" else "dev macro-F1",
        "steps": trials[0].steps,
        "done": sum(t.status in (TuneTrial.Status.SUCCEEDED, TuneTrial.Status.FAILED) for t in trials),
    }


def polyline(points: Any) -> str:
    """"x,y x,y ..." for an SVG polyline of [[step, value], ...], scaled into WIDTH x HEIGHT; "" if < 2 points."""
    if not isinstance(points, list):
        return ""
    pairs = [(float(p[0]), float(p[1])) for p in points
             if isinstance(p, list) and len(p) == 2 and all(isinstance(v, (int, float)) and math.isfinite(v) for v in p)]
    if len(pairs) < 2:
        return ""
    xs, ys = [x for x, _ in pairs], [y for _, y in pairs]
    x0, xspan = min(xs), (max(xs) - min(xs)) or 1.0
    y0, yspan = min(ys), (max(ys) - min(ys)) or 1.0
    return " ".join(f"{(x - x0) / xspan * WIDTH:.1f},{HEIGHT - (y - y0) / yspan * HEIGHT:.1f}" for x, y in pairs)
