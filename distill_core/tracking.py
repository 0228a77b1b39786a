"""`run --track`: a local run streamed into a dashboard through distillery_client's TrackingSink.

Only the standard library crosses this boundary (HTTP): distill_core stays free of Django and Celery,
and the client package is imported only when a run is tracked.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from distill_core.config import ExperimentConfig
from distill_core.errors import DistillError, RunCancelled


def run_tracked(args: argparse.Namespace, config: ExperimentConfig, sink: Any) -> dict[str, Any]:
    """Run `config` with a TrackingSink around `sink`; end the tracked experiment however the run ends."""
    from distill_core.distiller import run
    from distillery_client.credentials import load
    from distillery_client.http import Connection
    from distillery_client.track import TrackingSink

    connection = Connection(load(args.track or None), timeout=10.0)
    name = args.track_name or Path(args.config).stem
    team: int | str | None = int(args.team) if args.team and args.team.isdecimal() else args.team
    tracker = TrackingSink(connection, name, config.to_dict(), team=team, inner=sink)
    print(f"tracking as {tracker.url}", file=sys.stderr)
    try:
        results = run(config, sink=tracker, should_cancel=tracker.should_cancel, resume=not args.fresh,
                      cache_dir=args.cache_dir, hub_cache=args.hub_cache)
    except RunCancelled as exc:
        tracker.close("CANCELLED", f"Cancelled: {exc}")
        raise
    except DistillError as exc:
        tracker.close("FAILED", str(exc))
        raise
    except BaseException as exc:
        tracker.close("FAILED", f"{type(exc).__name__}: {exc}")
        raise
    tracker.close("SUCCEEDED")
    return results
