"""Wall time and test accuracy of each reference recipe in examples/, run as a user runs it.

    .venv/bin/python bench/examples.py                        # every examples/*.json
    .venv/bin/python bench/examples.py --only textcnn_thucnews

Each recipe runs in its own `python -m distill_core run <config> --output var/bench/examples/<name>
--fresh --results ...` process with an empty teacher cache, so its wall time includes loading the
teacher and labelling the data. The recipes read the demo teacher var/teachers/demo/demo-thucnews-bert
(made by `make run`, or by the train-teacher command printed when it is missing). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

EXAMPLES = common.ROOT / "examples"
TEACHER = common.ROOT / "var" / "teachers" / "demo" / "demo-thucnews-bert"
TRAIN_TEACHER = ("python -m distill_core train-teacher --train webapp/experiments/demo_data/thucnews/train.tsv "
                 "--dev webapp/experiments/demo_data/thucnews/dev.tsv --labels "
                 "webapp/experiments/demo_data/thucnews/labels.txt --output var/teachers/demo/demo-thucnews-bert "
                 "--layers 4 --hidden 256 --epochs 4 --lr 5e-4")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated recipe names (file names without .json)")
    parser.add_argument("--config-dir", type=Path, default=EXAMPLES, help=argparse.SUPPRESS)  # tests: tiny recipes
    args = parser.parse_args()
    configs = sorted(args.config_dir.glob("*.json"))
    if args.only:
        wanted = set(args.only.split(","))
        configs = [c for c in configs if c.stem in wanted]
    if args.config_dir == EXAMPLES and not (TEACHER / "config.json").is_file():
        raise SystemExit(f"The recipes need the demo teacher at {TEACHER}: run `make run` once, or\n  {TRAIN_TEACHER}")
    out = {"bench": "examples", "recipes": {}}
    for config in configs:
        work = common.VAR / "examples" / config.stem
        results_file = work.with_suffix(".results.json")
        print(f"[{time.strftime('%H:%M:%S')}] {config.stem}", file=sys.stderr, flush=True)
        started = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "distill_core", "run", str(config), "--output", str(work),
                               "--results", str(results_file), "--fresh"], cwd=common.ROOT, capture_output=True,
                              text=True)
        wall = round(time.monotonic() - started, 1)
        if proc.returncode != 0:
            out["recipes"][config.stem] = {"error": proc.stderr.strip().splitlines()[-3:], "wall_seconds": wall}
            continue
        results = json.loads(results_file.read_text(encoding="utf-8"))
        out["recipes"][config.stem] = {
            "name": json.loads(config.read_text(encoding="utf-8"))["name"], "wall_seconds": wall,
            "teacher_inference_seconds": results["seconds"]["teacher_inference"],
            "training_seconds": results["seconds"]["training"], "steps": results["steps"],
            "train_examples": results["examples"]["train"],
            "student_accuracy": round(results["student"]["accuracy"], 4),
            "teacher_accuracy": round(results["teacher"]["accuracy"], 4),
            "student_parameters": results["size"]["student"]["parameters"],
            "compression": round(results["size"]["compression"], 2),
        }
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
