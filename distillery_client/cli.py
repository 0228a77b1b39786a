"""`distillery`: the remote CLI (installed as a console script; also `python -m distillery_client`).

    distillery login http://127.0.0.1:8000            # asks for the token (or --token / $DISTILLERY_TOKEN)
    distillery submit run.json --name "T=4" --priority 5
    distillery logs -f 42
    distillery metrics 42 --csv > metrics.csv
    distillery download-student 42 ./student
    distillery ls --status running --team acme
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys

from distillery_client import api, credentials
from distillery_client.http import ApiError, Unreachable


def cmd_login(args: argparse.Namespace) -> int:
    token = args.token or os.environ.get("DISTILLERY_TOKEN") or getpass.getpass("API token (from /accounts/tokens/): ")
    api.login(args.url, token.strip())
    print(f"Logged in to {args.url.rstrip('/')}; credentials saved in {credentials.path()} (mode 0600).")
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    with open(args.config, encoding="utf-8") as fh:
        body = json.load(fh)
    if not isinstance(body, dict):
        raise SystemExit(f"error: {args.config} must hold a JSON object of the new-experiment form's inputs.")
    created = api.submit(body, team=args.team, name=args.name, gpus=args.gpus, priority=args.priority)
    runs = created.get("experiments", [created])
    for run in runs:
        print(f"{run['id']}\t{run['status']}\t{run['name']}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    run = api.status(args.id)
    if args.json:
        print(json.dumps(run, indent=2, ensure_ascii=False))
        return 0
    phase = run.get("phase") or {}
    print(f"{run['id']} {run['name']}: {run['status_label']}, {100 * (run.get('progress') or 0):.0f}% "
          f"(step {run['current_step']}/{run.get('total_steps') or '?'})"
          + (f", {phase.get('label')} {phase.get('done')}/{phase.get('total') or '?'}" if phase else ""))
    for key, value in sorted((run.get("best") or {}).items()):
        print(f"  best {key}: {value}")
    if run.get("error"):
        print(f"  error: {run['error']}")
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    if args.follow:
        final = api.follow(args.id, interval=args.interval, bar=not args.no_bar)
        return 0 if final["status"] == "SUCCEEDED" else 1
    print(api.status(args.id).get("log_tail", ""))
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    if args.csv:
        api.metrics_csv(args.id, sys.stdout, args.key or None)
        return 0
    for key, points in sorted(api.metrics(args.id, args.key or None).items()):
        step, value = points[-1]
        print(f"{key}: {len(points)} points, last {value} at step {step}")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    print(f"student unpacked into {api.download_student(args.id, args.directory)}")
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    answer = api.cancel(args.id)
    print(f"{args.id}: {answer['outcome'].replace('_', ' ')} ({answer['experiment']['status'].lower()})")
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    tracked = {"yes": True, "no": False}.get(args.tracked or "")
    rows = api.ls(status=args.status, team=args.team, name=args.name, owner=args.owner, tag=args.tag,
                  tracked=tracked, limit=args.limit)
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        sys.stdout.write(api.render_table(rows))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="distillery", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("login", help="check a token against a server and save both (0600)")
    s.add_argument("url", help="the dashboard's address, e.g. http://127.0.0.1:8000")
    s.add_argument("--token", help="an API token (default: $DISTILLERY_TOKEN, else asked for)")
    s.set_defaults(fn=cmd_login)
    s = sub.add_parser("submit", help="queue an experiment from a distill_core config.json or the form's inputs")
    s.add_argument("config", help="an experiment's config.json (teacher and data by path, registered on the "
                                  'server), or the form\'s inputs: {"teacher": 1, "dataset": 1, "temperature": 4}')
    s.add_argument("--team", type=int, help="team id (default: the file's, else your only team)")
    s.add_argument("--name")
    s.add_argument("--gpus", type=int, help="GPUs for the run (servers whose form offers it)")
    s.add_argument("--priority", type=int)
    s.set_defaults(fn=cmd_submit)
    s = sub.add_parser("status", help="one experiment's status, progress and best metrics")
    s.add_argument("id", type=int)
    s.add_argument("--json", action="store_true", help="the whole API answer (config and environment included)")
    s.set_defaults(fn=cmd_status)
    s = sub.add_parser("logs", help="the run's last log lines; -f follows them with a progress bar")
    s.add_argument("id", type=int)
    s.add_argument("-f", "--follow", action="store_true")
    s.add_argument("--interval", type=float, default=2.0, help="seconds between polls (default 2)")
    s.add_argument("--no-bar", action="store_true", help="log lines only, no progress bar")
    s.set_defaults(fn=cmd_logs)
    s = sub.add_parser("metrics", help="every metric point (not downsampled); --csv writes key,step,value")
    s.add_argument("id", type=int)
    s.add_argument("--csv", action="store_true")
    s.add_argument("--key", action="append", help="only this series, e.g. dev/accuracy (repeatable)")
    s.set_defaults(fn=cmd_metrics)
    s = sub.add_parser("download-student", help="download a finished run's student and unpack it")
    s.add_argument("id", type=int)
    s.add_argument("directory")
    s.set_defaults(fn=cmd_download)
    s = sub.add_parser("cancel", help="cancel a queued run or stop a running one")
    s.add_argument("id", type=int)
    s.set_defaults(fn=cmd_cancel)
    s = sub.add_parser("ls", help="your teams' experiments, newest first")
    s.add_argument("--status", help="queued, running, succeeded, failed, cancelled, ...")
    s.add_argument("--team", help="team id or slug")
    s.add_argument("--name", help="names containing this text")
    s.add_argument("--owner", help="a username")
    s.add_argument("--tag")
    s.add_argument("--tracked", choices=("yes", "no"), help="only tracked runs / only the dashboard's own")
    s.add_argument("--limit", type=int, default=50)
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_ls)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.fn(args)
    except credentials.NotLoggedIn as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ApiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Unreachable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 130
