"""`python -m distill_core run config.json` runs the stored config; `predict` uses the export."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "distill_core", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})


def test_the_cli_runs_a_config_file_and_predicts_with_the_export(make_config, tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps(make_config(train={"epochs": 1}), ensure_ascii=False), encoding="utf-8")
    out = cli("run", str(config), "--output", str(tmp_path / "cli-export"), "--results", str(tmp_path / "r.json"))
    assert out.returncode == 0, out.stderr
    assert "test accuracy: student" in out.stdout and "student exported to" in out.stdout
    for label in ("Reading data", "Tokenising", "Teacher labelling", "Training", "Evaluating", "Exporting"):
        assert f"{label}: " in out.stderr, label  # one tqdm bar per phase
    results = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert results["export_dir"] == str(tmp_path / "cli-export")

    predicted = cli("predict", str(tmp_path / "cli-export"), "央行宣布降准")
    assert predicted.returncode == 0, predicted.stderr
    label, probability, text = predicted.stdout.strip().split("\t")
    assert text == "央行宣布降准" and 0.0 < float(probability) <= 1.0


def test_a_bad_config_exits_2_with_the_message(tmp_path):
    config = tmp_path / "config.json"
    config.write_text('{"kd": {"temperature": -1}}', encoding="utf-8")
    out = cli("run", str(config))
    assert out.returncode == 2
    assert out.stderr.startswith("error: ") and "Traceback" not in out.stderr


def test_train_teacher_takes_the_demo_teachers_shape(thucnews_slice, tmp_path):
    labels = tmp_path / "labels.txt"
    from tests.conftest import demo_labels

    labels.write_text("\n".join(demo_labels()) + "\n", encoding="utf-8")
    out = cli("train-teacher", "--train", str(thucnews_slice["train"]), "--dev", str(thucnews_slice["dev"]),
              "--labels", str(labels), "--output", str(tmp_path / "t"), "--epochs", "1", "--layers", "1",
              "--hidden", "64", "--lr", "5e-4")
    assert out.returncode == 0, out.stderr
    assert "dev accuracy" in out.stdout
    config = json.loads((tmp_path / "t" / "config.json").read_text())
    assert (config["num_hidden_layers"], config["hidden_size"], config["num_attention_heads"],
            config["intermediate_size"]) == (1, 64, 1, 256)
