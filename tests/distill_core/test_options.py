"""Options declared once (distill_core/options.py): the library validates with the declarations, the
registries are the only lists of names, and the CLI's describe and the docs' table are generated."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from distill_core import options_doc
from distill_core.config import ExperimentConfig, KDConfig, TrainConfig
from distill_core.errors import ConfigError
from distill_core.options import Option, check, declared, opt, option_of
from distill_core.student_options import TRANSFORMER_PRESETS, student_types

REPO = Path(__file__).resolve().parents[2]
# Fields that are not one scalar value with bounds: paths, columns, lists and objects, checked by validate().
STRUCTURAL = {"name", "output_dir", "matches", "stages", "data.train", "data.dev", "data.test", "data.has_header",
              "data.text_column", "data.text_pair_column", "data.label_column", "data.labels",
              "data.label_separator", "teacher.path", "teacher.ensemble", "student.options", "student.embedding_file", "train.device",
              "tune.losses",  # a list of registry names, checked in validate()
              "lm.student_path", "lm.sample_prompts"}


def _all_fields(cls: type, prefix: str = "") -> list[str]:
    out = []
    for f in dataclasses.fields(cls):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if dataclasses.is_dataclass(default):
            out += _all_fields(type(default), f"{prefix}{f.name}.")
        else:
            out.append(prefix + f.name)
    return out


def test_every_scalar_option_of_the_config_and_of_every_student_is_declared():
    declared_paths = {d.path for d in declared(ExperimentConfig)}
    fields = set(_all_fields(ExperimentConfig))
    assert fields - STRUCTURAL == declared_paths
    for student in student_types.ordered():
        cls = student_types.get(student)
        assert {d.name for d in declared(cls)} == {f.name for f in dataclasses.fields(cls)}, student
    assert all(d.option.help for d in declared(ExperimentConfig))


def test_choices_are_the_registries_names_in_their_order():
    from distill_core.losses import kd_losses
    from distill_core.schedules import temperature_schedules, weight_schedules
    from distill_core.students import students

    assert option_of(KDConfig, "loss").names() == tuple(kd_losses.ordered()) == ("kl", "ce", "mse", "bce")
    assert option_of(KDConfig, "temperature_schedule").names() == tuple(temperature_schedules.ordered())
    assert option_of(KDConfig, "kd_weight_schedule").names() == tuple(weight_schedules.ordered())
    assert students.ordered() == student_types.ordered() == ["textcnn", "bilstm", "bigru", "transformer"]
    preset = option_of(student_types.get("transformer"), "preset")
    assert preset.names() == (*TRANSFORMER_PRESETS, "custom")


@pytest.mark.parametrize(("section", "values", "field", "message"), [
    ("kd", {"temperature": 5000}, "kd.temperature", "Temperature must be greater than 0 and at most 1000 (got 5000)"),
    ("kd", {"kd_weight": 2000}, "kd.kd_weight", "or null for 1 - alpha"),
    ("train", {"warmup_ratio": 1.0}, "train.warmup_ratio", "between 0 and 0.999"),
    ("train", {"grad_clip": 0}, "train.grad_clip", "greater than 0 and at most 1e+06, or null for no clipping"),
    ("train", {"learning_rate": float("nan")}, "train.learning_rate", "(got nan)"),
    ("augment", {"ngram_range": [1, 2, 3]}, "augment.ngram_range", "must have 2 items"),
    ("student", {"embedding_dim": 5000}, "student.embedding_dim", "between 1 and 4096"),
])
def test_the_library_refuses_what_the_declarations_refuse(section, values, field, message):
    raw = {"data": {"train": "x.tsv"}, "teacher": {"path": "t"}}
    raw.setdefault(section, {}).update(values)
    with pytest.raises(ConfigError) as err:
        ExperimentConfig.from_dict(raw)
    assert err.value.field == field and message in str(err.value), str(err.value)


def test_a_stage_obeys_the_runs_declarations():
    raw = {"data": {"train": "x.tsv"}, "teacher": {"path": "t"}, "stages": [{"name": "a", "temperature": 2000}]}
    with pytest.raises(ConfigError, match="Temperature must be greater than 0 and at most 1000") as err:
        ExperimentConfig.from_dict(raw)
    assert err.value.field == "stages.0.temperature"


def test_a_students_options_are_checked_against_their_declarations():
    from distill_core.students import build_student

    with pytest.raises(ConfigError, match=r"student.options.num_filters must be between 1 and 4096 \(got 0\)") as e:
        build_student("textcnn", 10, 2, 8, {"num_filters": 0})
    assert e.value.field == "student.options.num_filters"
    with pytest.raises(ConfigError, match="student.options.preset='T99' is not one of: T3, T3-small"):
        build_student("transformer", 10, 2, 8, {"preset": "T99"})


def test_the_option_helpers_word_each_kind_of_bound():
    @dataclasses.dataclass
    class Demo:
        ratio: float = opt(0.5, "a ratio", low=0.0, high=1.0, high_open=True)
        width: int = opt(0, "0: automatic", low=8, high=64, unset=0)
        mode: str = opt("a", "a mode", choices=("a", "b"))

    check(Demo(width=0))  # unset is exempt from the bounds
    for bad, message in [(Demo(ratio=1.0), "ratio must be at least 0 and below 1 (got 1)"),
                         (Demo(width=4), "width must be between 8 and 64 (got 4)"),
                         (Demo(mode="c"), "demo.mode='c' is not one of: a, b.")]:
        with pytest.raises(ConfigError) as err:
            check(bad, "demo.")
        assert message in str(err.value)
    assert Option("x", low=0, low_open=True).bounds_text() == "greater than 0"


def test_the_docs_table_is_the_generated_one():
    assert options_doc.main(["--check"]) == 0, "run: python -m distill_core.options_doc"
    table = options_doc.markdown()
    assert "| `kd.temperature` | `2.0` | float greater than 0 and at most 1000 |" in table
    assert "| `student.options.preset` | `\"T4-tiny\"` | T3 / T3-small / T4-tiny / T6 / T12-nano / custom |" in table


def test_the_cli_describes_every_option_and_refuses_a_temperature_of_5000(tmp_path):
    env = {"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "distill_core", "describe"], cwd=REPO, capture_output=True,
                         text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    for d in declared(ExperimentConfig) + declared(TrainConfig, "train."):
        assert f"  {d.path} = {json.dumps(d.default)}" in out.stdout, d.path
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"data": {"train": "x.tsv"}, "teacher": {"path": "t"}, "kd": {"temperature": 5000}}))
    out = subprocess.run([sys.executable, "-m", "distill_core", "run", str(config)], cwd=REPO, capture_output=True,
                         text=True, timeout=300, env=env)
    assert out.returncode == 2 and "at most 1000" in out.stderr, out.stderr
