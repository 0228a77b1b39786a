"""Every bench script still runs end to end at its smallest size and prints one JSON line.

Benchmarks are not run by CI for their numbers; these smoke runs only keep them from rotting.
Each script runs in a subprocess on its own SQLite database, var directory and bench cache directory (never a
shared Postgres, nor var/bench/, which another test or a real benchmark may be writing), with the flags that make
it finish in seconds.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # each runs a bench script in a subprocess, up to a minute or more

REPO = Path(__file__).resolve().parent.parent.parent


def run_script(script: str, args: list[str], tmp_path: Path) -> dict:
    env = dict(os.environ)
    env.update({"DATABASE_URL": f"sqlite:///{tmp_path / 'bench.sqlite3'}", "DISTILLERY_VAR_DIR": str(tmp_path),
                "DISTILLERY_BENCH_DIR": str(tmp_path / "bench"), "PYTHONUNBUFFERED": "1"})
    proc = subprocess.run([sys.executable, str(REPO / "bench" / script), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, proc.stdout[-3000:]
    return json.loads(lines[0])


def test_throughput_runs_every_contender_at_the_tiny_size(tmp_path):
    out = run_script("throughput.py", ["--size", "tiny", "--setups", "textcnn", "--threads", "1"], tmp_path)
    # The matches setup runs the teacher live: Distillery and TextBrewer only (the suite's time; the other
    # contenders differ from Distillery's there only as they do in the textcnn setup)
    matches = run_script("throughput.py", ["--size", "tiny", "--setups", "t4tiny_matches", "--threads", "1",
                                           "--contenders", "distillery,textbrewer"], tmp_path)
    contenders = out["setups"]["textcnn"]["contenders"]
    expected = {"student_only", "distillery", "distillery_unbucketed", "distillery_bucketed", "distillery_bf16"}
    if importlib.util.find_spec("textbrewer") is not None:
        expected |= {"textbrewer", "textbrewer_cached"}
    assert set(contenders) == expected
    assert "distillery" in matches["setups"]["t4tiny_matches"]["contenders"]
    for result in [*contenders.values(), *matches["setups"]["t4tiny_matches"]["contenders"].values()]:
        assert "error" not in result, result
        assert result["samples_per_s_all"] > 0 and result["peak_rss_mb"] > 0
        assert len(result["epoch_seconds"]) == 2 and len(result["epoch_cpu_seconds"]) == 2
        assert 0.0 <= result["test_accuracy"] <= 1.0
    assert "distillery_vs_student_only_epochs_2_n" in out["setups"]["textcnn"]["ratios"]
    assert "distillery_vs_distillery_unbucketed_all_epochs" in out["setups"]["textcnn"]["ratios"]


def test_throughput_reads_trec_questions(tmp_path):
    trec = tmp_path / "trec"
    trec.mkdir()
    questions = [("How far is it from Denver to Aspen ?", "NUM"), ("What is CNN ?", "ABBR"),
                 ("Who wrote Hamlet , the play about a prince of Denmark ?", "HUM"), ("Where is Perth ?", "LOC")]
    for name, copies in (("train", 12), ("test", 3)):
        rows = [f"{q}\t{label}\t{label}:other\n" for q, label in questions * copies]
        (trec / f"{name}.tsv").write_text("".join(rows), encoding="utf-8")
    out = run_script("throughput.py", ["--size", "tiny", "--setups", "textcnn", "--data", "trec", "--trec-dir",
                                       str(trec), "--max-length", "64", "--contenders", "distillery,student_only",
                                       "--threads", "1"], tmp_path)
    contenders = out["setups"]["textcnn"]["contenders"]
    assert out["data"] == "trec" and set(contenders) == {"distillery", "student_only"}
    assert all("error" not in r and 0.0 <= r["test_accuracy"] <= 1.0 for r in contenders.values()), contenders


def test_quality_fills_the_table_at_the_tiny_size(tmp_path):
    # the bundled demo titles stand in for ../shared/datasets/thucnews, which a clone need not sit beside
    data = tmp_path / "thucnews"
    data.mkdir()
    demo = REPO / "webapp" / "experiments" / "demo_data" / "thucnews" / "train.tsv"
    (data / "train.txt").write_text(demo.read_text(encoding="utf-8"), encoding="utf-8")
    out = run_script("quality.py", ["--size", "tiny", "--data", str(data), "--runs", "textcnn alone,textcnn distilled"],
                     tmp_path)
    assert [row["model"] for row in out["rows"]][1:] == ["textcnn alone", "textcnn distilled"]
    assert out["rows"][0]["model"].startswith("teacher")
    assert all(0.0 <= row["accuracy"] <= 1.0 and row["parameters"] > 0 for row in out["rows"])
    assert "textcnn distilled" in out["checks"]["distilled_beats_alone"]


def trec_slice(tmp_path: Path) -> Path:
    """240 questions in TREC's shared layout (train.tsv, test.tsv, class.txt), 40 of each class."""
    data = tmp_path / "trec"
    data.mkdir()
    classes = ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]
    (data / "class.txt").write_text("\n".join(classes) + "\n", encoding="utf-8")
    questions = ["What does NASA stand for ?", "How do bees make honey ?", "What color is the sky ?",
                 "Who wrote Hamlet ?", "Where is Paris ?", "How many legs has a spider ?"]
    rows = [f"{q} {i}\t{c}\t{c}:x\n" for i in range(40) for q, c in zip(questions, classes, strict=True)]
    (data / "train.tsv").write_text("".join(rows), encoding="utf-8")
    (data / "test.tsv").write_text("".join(rows[:60]), encoding="utf-8")
    return data


def test_quality_trec_fills_the_table_with_a_tiny_random_teacher(tmp_path):
    # a slice of TREC in the shared layout; --size tiny fine-tunes a tiny random BERT, so no teacher package is needed
    data = trec_slice(tmp_path)
    out = run_script("quality_trec.py", ["--size", "tiny", "--data", str(data),
                                         "--runs", "textcnn alone,textcnn distilled,transformer from teacher distilled,"
                                         "textcnn alone + teacher emb,textcnn distilled + teacher emb + NN augment,"
                                         "transformer 3L pruned distilled", "--projection", "once"],
                     tmp_path)
    assert out["examples"] == {"train": 180, "dev": 20, "test": 50}
    assert out["rows"][0]["model"].startswith("teacher: tiny random BERT")
    assert [row["model"] for row in out["rows"][1:]] == ["textcnn alone", "textcnn distilled",
                                                         "transformer from teacher distilled",
                                                         "textcnn alone + teacher emb",
                                                         "textcnn distilled + teacher emb + NN augment",
                                                         "transformer 3L pruned distilled"]
    assert all(0.0 <= row["accuracy"] <= 1.0 and row["parameters"] > 0 and row["mb"] > 0 for row in out["rows"])
    # each distilled row is judged against its own hard-label twin; the folded projection keeps the size
    assert set(out["checks"]["distilled_gain_points"]) == {"textcnn distilled",
                                                           "textcnn distilled + teacher emb + NN augment"}
    assert out["rows"][1]["parameters"] == out["rows"][4]["parameters"] == out["rows"][5]["parameters"]
    pruned = out["rows"][6]
    assert pruned["pruned_vocab"]["kept"] < pruned["pruned_vocab"]["of"]
    assert out["rows"][4]["embedding_projection"] == "once" and all(len(r["predictions"]) == 50 for r in out["rows"][1:])


def test_tune_kd_trec_tunes_against_a_rerun_twin_with_a_tiny_random_teacher(tmp_path):
    data = trec_slice(tmp_path)
    out = run_script("tune_kd_trec.py", ["--size", "tiny", "--data", str(data), "--seeds", "1", "--students",
                                         "textcnn", "--alone", "textcnn", "--temperatures", "1,4", "--alphas", "0.5",
                                         "--steps", "10"], tmp_path)
    assert "T = " in json.dumps(out) and "gain_points" in json.dumps(out)



def test_metric_ingest_stores_every_point(tmp_path):
    out = run_script("metric_ingest.py", ["--steps", "40", "--keys", "3", "--writer", "both"], tmp_path)
    assert out["database"] == "sqlite"
    assert out["bulk"]["stored"] == out["orm"]["stored"] == 120


def test_sink_overhead_compares_the_two_sinks(tmp_path):
    out = run_script("sink_overhead.py", ["--examples", "32", "--epochs", "1", "--rounds", "1"], tmp_path)
    assert out["points_stored"] > 0
    assert out["overhead_ratio"] > 0


def test_list_page_renders_with_a_few_experiments(tmp_path):
    out = run_script("list_page.py", ["--experiments", "12", "--repeat", "1"], tmp_path)
    assert out["bench"]


def test_load_serves_pollers_while_runs_stream_with_no_errors(tmp_path):
    out = run_script("load.py", ["--runs", "2", "--clients", "3", "--duration", "4"], tmp_path)
    assert out["errors"] == 0 and out["requests"] >= 6 and out["points_written"] > 0
    assert set(out["endpoints"]) == {"list", "metrics", "status"}


def test_examples_times_each_recipe_in_its_own_cli_process(tmp_path):
    from distill_core.testing import make_tiny_teacher
    from tests.conftest import demo_labels, write_demo_slice

    data = write_demo_slice(tmp_path / "data", train=64, dev=16, test=16)
    teacher = make_tiny_teacher(tmp_path / "teacher", demo_labels(), "".join(p.read_text() for p in data.values()),
                                layers=1, hidden=16, heads=1)
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    recipe = {"name": "tiny textcnn", "data": {**{k: str(v) for k, v in data.items()}, "labels": demo_labels(),
                                               "max_length": 16},
              "teacher": {"path": str(teacher)}, "student": {"type": "textcnn", "embedding_dim": 8},
              "train": {"epochs": 1, "batch_size": 32}}
    (recipes / "tiny.json").write_text(json.dumps(recipe), encoding="utf-8")
    out = run_script("examples.py", ["--config-dir", str(recipes)], tmp_path)
    tiny = out["recipes"]["tiny"]
    assert "error" not in tiny, tiny
    assert tiny["wall_seconds"] > 0 and tiny["steps"] == 2 and 0 <= tiny["student_accuracy"] <= 1


def test_teacher_dtype_times_every_saved_dtype_computed_in_float32(tmp_path):
    out = run_script("teacher_dtype.py", ["--layers", "1", "--hidden", "64", "--sentences", "32", "--repeats", "1"],
                     tmp_path)
    assert out["compute_dtype"] == {"float32": "float32", "float16": "float32", "bfloat16": "float32"}
    assert set(out["ratio_vs_float32"]) == set(out["naive_sentences_per_s"]) == {"float32", "float16", "bfloat16"}
    assert all(rate > 0 for rate in out["sentences_per_s"].values())


def test_dataset_preview_reads_twenty_rows_of_a_small_file(tmp_path):
    out = run_script("dataset_preview.py", ["--mb", "0.5"], tmp_path)
    assert out["shown"] == 20 and out["rows"] > 20 and out["file_mb"] >= 0.5
