"""Command line: `python -m distill_core run config.json`, `describe`, `predict`, `train-teacher`.

The config is the JSON the web form stores (each experiment page links to its config.json),
so a dashboard run can be reproduced on any machine. An environment.json beside the config (every
run's output directory has one) sets the thread counts it was computed with and is compared with
this machine; see README "Reproducing a run" for what that does and does not guarantee.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any

from distill_core.errors import DistillError, RunCancelled


class ProgressSink:
    """Print one tqdm bar per phase of the run (the training bar with the latest loss), one line per evaluation."""

    def __init__(self) -> None:
        self.bar = None
        self.phase: str | None = None

    def emit(self, kind: str, payload: dict[str, Any]) -> None:
        from tqdm import tqdm

        if kind == "phase":
            if payload["name"] != self.phase:
                self._close()
                self.phase = payload["name"]
                self.bar = tqdm(total=payload["total"], unit=payload["unit"], desc=payload["label"],
                                dynamic_ncols=True)
            self.bar.update(payload["done"] - self.bar.n)
            if payload["finished"]:
                self._close()
        elif kind == "step" and self.bar is not None and self.phase == "training":
            m = payload["metrics"]
            if "distill_loss" in m:  # a language-model run
                self.bar.set_postfix(loss=f"{m['loss']:.4f}", distill=f"{m['distill_loss']:.4f}",
                                     sft=f"{m['sft_loss']:.4f}")
            else:
                self.bar.set_postfix(loss=f"{m['loss']:.4f}", kd=f"{m['kd_loss']:.4f}", hard=f"{m['hard_loss']:.4f}")
        elif kind == "eval":
            m = payload["metrics"]
            line = (f"{payload['split']} step {payload['step']}: perplexity {m['perplexity']:.4f}, agreement "
                    f"{m['agreement']:.4f}" if "perplexity" in m else
                    f"{payload['split']} step {payload['step']}: accuracy {m['accuracy']:.4f}, macro-F1 {m['macro_f1']:.4f}")
            (self.bar.write if self.bar is not None else print)(line)
        elif kind == "trial" and payload["status"] != "running":
            score = f"{payload['score']:.4f}" if payload["score"] is not None else payload["error"]
            line = f"tune trial {payload['index'] + 1} {payload['settings']}: {payload['status']}, dev {score}"
            (self.bar.write if self.bar is not None else print)(line)
        elif kind == "tune_choice":
            (self.bar.write if self.bar is not None else print)(f"tune KD chose {payload['explanation']}")
        elif kind == "result":
            self._close()

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.bar, self.phase = None, None


class MetricsFile:
    """Write every `step` and `eval` event as one JSON line (the same points the dashboard stores)."""

    def __init__(self, path: str, inner: ProgressSink) -> None:
        self.fh = open(path, "w", encoding="utf-8")  # noqa: SIM115  (closed on the result event)
        self.inner = inner

    def emit(self, kind: str, payload: dict[str, Any]) -> None:
        self.inner.emit(kind, payload)
        if kind in ("step", "eval"):
            self.fh.write(json.dumps({"event": kind, **payload}) + "\n")
        elif kind == "result":
            self.fh.close()


def use_recorded_environment(config_path: str) -> None:
    """Take the thread counts of the environment.json beside the config; warn about other differences."""
    import torch

    from distill_core import environment

    recorded = environment.read_beside(config_path)
    if recorded is None:
        return
    environment.apply(recorded)
    device = recorded.get("device", "cpu") if torch.cuda.is_available() else "cpu"
    for line in environment.differences(recorded, environment.record(recorded.get("seed", 0), torch.device(device))):
        print(f"warning: not the recorded environment ({line}); results may differ", file=sys.stderr)


def cmd_run(args: argparse.Namespace) -> int:
    from distill_core import parallel
    from distill_core.config import ExperimentConfig
    from distill_core.distiller import run

    if args.track is not None and (args.nproc > 1 or int(os.environ.get("WORLD_SIZE", "1")) > 1):
        print("error: --track streams a one-process run; leave out --nproc (or queue the run on the dashboard "
              "with gpus > 1)", file=sys.stderr)
        return 2
    if args.nproc > 1:  # start torchrun, which runs this command (without --nproc) on every rank
        return parallel.launch(args.nproc, ["distill_core", *run_argv(args)])
    config = ExperimentConfig.load(args.config)
    if args.output:
        config.output_dir = args.output
    if args.tune:
        config.tune.enabled = True
        config.validate()
    use_recorded_environment(args.config)
    main_rank = int(os.environ.get("RANK", "0")) == 0  # under torchrun only rank 0 reports
    sink = ProgressSink() if not args.metrics else MetricsFile(args.metrics, ProgressSink())
    try:
        if args.track is not None:
            from distill_core.tracking import run_tracked

            results = run_tracked(args, config, sink)
        else:
            results = run(config, sink=sink if main_rank else None, resume=not args.fresh, cache_dir=args.cache_dir,
                          hub_cache=args.hub_cache)
    except BaseException as exc:
        parallel.record_failure(exc)
        raise
    if not main_rank:
        return 0
    s, t, size = results["student"], results["teacher"], results["size"]
    if results.get("kind") == "lm_distill":
        print(f"\n{results['test_split']} perplexity: student {s['perplexity']:.4f} (agreement {s['agreement']:.4f}), "
              f"teacher {t['perplexity']:.4f}; {size['compression']:.1f}x fewer parameters, "
              f"{size['speedup']}x tokens/s at batch 8")
        for sample in results["samples"]:
            print(f"  {sample['prompt']!r}\n    teacher: {sample['teacher']!r}\n    student: {sample['student']!r}")
    else:
        _print_classifier(results)
    if results["export_dir"]:
        print(f"student exported to {results['export_dir']}")
    if args.results:
        with open(args.results, "w", encoding="utf-8") as fh:
            json.dump(results, fh, indent=2, ensure_ascii=False)
    return 0


def run_argv(args: argparse.Namespace) -> list[str]:
    """The `run` command line that each torchrun rank gets: these arguments without --nproc."""
    argv = ["run", args.config]
    for flag in ("output", "results", "cache_dir", "metrics", "hub_cache"):
        if getattr(args, flag):
            argv += [f"--{flag.replace('_', '-')}", getattr(args, flag)]
    return argv + (["--fresh"] if args.fresh else [])


def _print_classifier(results: dict[str, Any]) -> None:
    s, t, size = results["student"], results["teacher"], results["size"]
    print(f"\n{results['test_split']} accuracy: student {s['accuracy']:.4f} (macro-F1 {s['macro_f1']:.4f}), "
          f"teacher {t['accuracy']:.4f} (macro-F1 {t['macro_f1']:.4f})")
    print(f"parameters: student {size['student']['parameters']:,}, teacher {size['teacher']['parameters']:,} "
          f"({size['compression']:.1f}x smaller); speed-up at batch 32: {size['speedup']}x")


def cmd_predict(args: argparse.Namespace) -> int:
    from distill_core.export import predict

    texts = args.texts or [line.rstrip("\n") for line in sys.stdin if line.strip()]
    for row in predict(args.export_dir, texts):
        top = max(row["probabilities"].values())
        print(f"{row['label']}\t{top:.3f}\t{row['text']}")
    return 0


def cmd_train_teacher(args: argparse.Namespace) -> int:
    from distill_core.teacher_training import train_teacher

    accuracy = train_teacher(args.train, args.dev, args.labels, args.output, epochs=args.epochs,
                             max_length=args.max_length, num_layers=args.layers, hidden_size=args.hidden,
                             heads=max(1, args.hidden // 64), intermediate=4 * args.hidden, lr=args.lr,
                             seed=args.seed, progress=print)
    print(f"teacher saved to {args.output}; dev accuracy {accuracy:.4f}")
    return 0


def cmd_describe(args: argparse.Namespace) -> int:
    from distill_core import options_doc

    print(options_doc.markdown() if args.markdown else options_doc.text(), end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m distill_core", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run an experiment from its JSON config",
                       epilog="Every config option, its default and accepted values: python -m distill_core describe")
    p.add_argument("config")
    p.add_argument("--output", help="export the student here (overrides output_dir)")
    p.add_argument("--results", help="also write the results JSON to this file")
    p.add_argument("--cache-dir", help="keep teacher outputs here for later runs (e.g. var/teacher-cache)")
    p.add_argument("--fresh", action="store_true", help="ignore a checkpoint in the output directory")
    p.add_argument("--tune", action="store_true", help="tune KD first: short trials over the config's tune grid "
                   "(tune.temperatures x tune.alphas x tune.losses) pick the settings of the full run")
    p.add_argument("--metrics", help="write every logged step and evaluation to this file, one JSON line each")
    p.add_argument("--hub-cache", help="download teachers given as hub:org/name@rev here (default: "
                                       "$DISTILLERY_HF_CACHE, else the Hugging Face cache)")
    p.add_argument("--track", nargs="?", const="", metavar="URL",
                   help="stream the run into a Distillery dashboard as an experiment of your team (URL default: "
                        "$DISTILLERY_URL, else `distillery login`'s; token: $DISTILLERY_TOKEN, else the login's)")
    p.add_argument("--track-name", help="the tracked experiment's name (default: the config file's name)")
    p.add_argument("--team", help="the team (id or slug) of the tracked experiment (default: your only team)")
    p.add_argument("--nproc", type=int, default=1, help="train on this many processes with DistributedDataParallel "
                                                        "(starts torchrun; one GPU each on CUDA, gloo on the CPU)")
    p.set_defaults(fn=cmd_run)
    p = sub.add_parser("describe", help="list every config option with its default, accepted values and meaning")
    p.add_argument("--markdown", action="store_true", help="as the Markdown table of docs/DISTILL_CORE.md")
    p.set_defaults(fn=cmd_describe)
    p = sub.add_parser("predict", help="classify texts (arguments, or one per line on stdin) with an export")
    p.add_argument("export_dir")
    p.add_argument("texts", nargs="*")
    p.set_defaults(fn=cmd_predict)
    p = sub.add_parser("train-teacher", help="train a small char-level BERT teacher on hard labels")
    p.add_argument("--train", required=True)
    p.add_argument("--dev", required=True)
    p.add_argument("--labels", required=True, help="a file with one class name per line")
    p.add_argument("--output", required=True)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--max-length", type=int, default=32)
    p.add_argument("--layers", type=int, default=2, help="transformer layers (the demo teacher: 4)")
    p.add_argument("--hidden", type=int, default=128,
                   help="hidden size; heads = hidden / 64, feed-forward = 4 x hidden (the demo teacher: 256)")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (the demo teacher: 5e-4)")
    p.add_argument("--seed", type=int, default=13)
    p.set_defaults(fn=cmd_train_teacher)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.fn(args)
    except DistillError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RunCancelled as exc:
        print(f"cancelled: {exc}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
