"""Teachers saved in float16/bfloat16 run in float32 on the CPU and give the float32 save's logits."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
import torch

from distill_core.students import build_student
from distill_core.teachers import compute_dtype, inspect_checkpoint, load_teacher, saved_dtype, teacher_logits
from distill_core.testing import make_tiny_teacher

TEXTS = ["abc def", "ghij klmnop abc", "a", "ponm lk jihg fedcba", "bad cafe", "hello world"] * 4
DTYPES = ("float32", "float16", "bfloat16")


@pytest.fixture(scope="module")
def saves(tmp_path_factory) -> dict[str, Path]:
    """One random teacher saved three times; its classifier scaled so logits are O(1) as a fine-tuned one's are.

    (A freshly initialised BERT gives logits of ~0.02, against which any tolerance would pass.)
    """
    from transformers import AutoModelForSequenceClassification

    root = tmp_path_factory.mktemp("precision")
    base = make_tiny_teacher(root / "base", ["a", "b", "c"], "abcdefghijklmnop hello world", seed=3)
    model = AutoModelForSequenceClassification.from_pretrained(base, dtype=torch.float32)
    with torch.no_grad():
        model.classifier.weight.mul_(100)
    out = {}
    for dtype in DTYPES:
        out[dtype] = shutil.copytree(base, root / dtype)
        model.to(getattr(torch, dtype)).save_pretrained(out[dtype])
        model.float()
    return out


def logits_of(path: Path) -> torch.Tensor:
    model, tokenizer = load_teacher(path, "cpu")
    return teacher_logits(model, tokenizer, TEXTS, None, max_length=24, batch_size=8)


def test_the_saved_dtype_is_read_from_the_weights_and_the_cpu_computes_in_float32(saves):
    for dtype, path in saves.items():
        info = inspect_checkpoint(path)
        assert info["dtype"] == saved_dtype(path) == dtype
        assert info["compute_dtype"] == {"cpu": "float32", "cuda": dtype}
        model, _ = load_teacher(path, "cpu")
        assert {p.dtype for p in model.parameters()} == {torch.float32}


def test_the_compute_dtype_policy_keeps_half_precision_only_on_cuda():
    assert compute_dtype("float16", "cpu") == compute_dtype("bfloat16", "cpu") == "float32"
    assert compute_dtype("float32", "cuda") == "float32"
    assert compute_dtype("float16", "cuda") == "float16"


def test_a_float16_save_gives_the_float32_saves_logits_to_1e_3(saves):
    reference = logits_of(saves["float32"])
    assert reference.abs().max() > 0.5  # the comparison means something at this scale
    torch.testing.assert_close(logits_of(saves["float16"]), reference, atol=1e-3, rtol=1e-3)


def test_a_bfloat16_save_gives_the_float32_saves_logits_to_8e_3(saves):
    # Both are computed in float32, so the only difference is rounding the weights when saving. bfloat16
    # keeps 8 significant bits against float16's 11: each weight's rounding error is 2**3 = 8x larger,
    # so the float16 tolerance times 8 (measured: 8e-3 worst of 72 logits of magnitude up to ~2).
    reference = logits_of(saves["float32"])
    torch.testing.assert_close(logits_of(saves["bfloat16"]), reference, atol=8e-3, rtol=8e-3)


def test_loading_logs_the_saved_and_the_compute_dtype(saves, caplog):
    with caplog.at_level(logging.INFO, logger="distill_core.teachers"):
        load_teacher(saves["float16"], "cpu")
    assert "saved in float16, computing in float32 on cpu" in caplog.text


def test_a_student_initialised_from_a_float16_teacher_keeps_float32_master_weights(saves):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(saves["float16"])
    student = build_student("transformer", config.vocab_size, 3, 32, {
        "preset": "custom", "layers": 1, "hidden": 32, "heads": 2, "ffn": 64,
        "init_from_teacher": str(saves["float16"])})
    assert {p.dtype for p in student.parameters()} == {torch.float32}
    assert student.copied_layers  # the weights were copied, not skipped


def test_teacher_precision_bfloat16_is_an_opt_in_that_needs_native_bfloat16(monkeypatch):
    from distill_core import teachers

    assert compute_dtype("float32", "cpu", "float32") == compute_dtype("bfloat16", "cuda", "float32") == "float32"
    monkeypatch.setattr(teachers, "cpu_has_native_bf16", lambda: True)
    assert compute_dtype("float32", "cpu", "bfloat16") == "bfloat16"
    monkeypatch.setattr(teachers, "cpu_has_native_bf16", lambda: False)  # emulated bfloat16 is slower: float32
    assert compute_dtype("float32", "cpu", "bfloat16") == "float32"


@pytest.mark.skipif(not __import__("distill_core.teachers").teachers.cpu_has_native_bf16(),
                    reason="this CPU has no native bfloat16")
def test_a_bfloat16_teacher_pass_rounds_the_logits_and_gets_its_own_cache_entries(saves, tmp_path):
    from distill_core.config import ExperimentConfig
    from distill_core.teacher_outputs import LoadedTeacher, load_teachers

    def loaded(precision: str) -> LoadedTeacher:
        config = ExperimentConfig.from_dict({"teacher": {"path": str(saves["float32"]), "precision": precision},
                                             "data": {"train": str(tmp_path / "train.tsv"), "labels": ["a", "b", "c"]}})
        return load_teachers(config, torch.device("cpu"), ["a", "b", "c"])[0]

    exact, fast = loaded("auto"), loaded("bfloat16")
    assert {p.dtype for p in fast.model.parameters()} == {torch.bfloat16}
    assert exact.cache_extra() == {} and fast.cache_extra() == {"compute": "bfloat16"}
    reference = teacher_logits(exact.model, exact.tokenizer, TEXTS, None, max_length=24, batch_size=8)
    rounded = teacher_logits(fast.model, fast.tokenizer, TEXTS, None, max_length=24, batch_size=8)
    assert rounded.dtype == torch.float32  # the cache and the loss read float32 whatever was computed
    assert 0 < float((rounded - reference).abs().max()) < 5e-2
