"""Submit-time check that an LM run's teacher and checkpoint student share one tokenizer, read within bounds."""

from __future__ import annotations

import json

import pytest
from django import forms

from distill_core.errors import CheckpointError
from distill_core.lm import tokenizer_files
from distill_core.lm.testing import WORDS, make_tokenizer
from webapp.experiments import lm_checks
from webapp.experiments.configs import form_field_for
from webapp.registry import tokenizers as tokenizer_cache

# The form field the check blames, whatever LM_FORM_FIELDS maps lm.student_path to.
StudentForm = type("StudentForm", (forms.Form,), {"lm_mode": forms.CharField(required=False),
                                                  form_field_for("lm.student_path"): forms.CharField(required=False)})


@pytest.fixture
def tokenizers(teacher_root):
    base = teacher_root / "acme" / "tok-base"
    same = teacher_root / "acme" / "tok-same"
    other = teacher_root / "acme" / "tok-other"
    for path, words in ((base, WORDS), (same, WORDS), (other, ("zebra",) + WORDS)):
        if not path.is_dir():
            make_tokenizer(path, words)
    tokenizer_cache.forget()
    return {"base": base, "same": same, "other": other}


def config(teacher, student) -> dict:
    return {"kind": "lm_distill", "teacher": {"path": str(teacher)},
            "lm": {"student_source": "checkpoint", "student_path": str(student)}}


def checked(acme, teacher, student) -> forms.Form:
    form = StudentForm({})
    form.is_valid()
    lm_checks.check_tokenizers(form, config(teacher, student), acme)
    return form


def test_a_student_with_the_same_vocabulary_passes(acme, tokenizers):
    assert not checked(acme, tokenizers["base"], tokenizers["same"]).errors


def test_a_different_vocabulary_is_named_on_the_student_field(acme, tokenizers):
    form = checked(acme, tokenizers["base"], tokenizers["other"])
    message = form.errors[form_field_for("lm.student_path")][0]
    assert "must share a tokenizer" in message
    assert "the teacher's vocabulary has" in message and "and the student's" in message
    assert "the first differing id is 4: 'the' in the teacher, 'zebra' in the student" in message


def test_differing_special_tokens_are_named(tmp_path):
    from transformers import AutoTokenizer

    make_tokenizer(tmp_path / "a")
    make_tokenizer(tmp_path / "b", ("cat",))
    b = AutoTokenizer.from_pretrained(tmp_path / "b")
    b.eos_token = "cat"
    message = tokenizer_files.describe_difference(AutoTokenizer.from_pretrained(tmp_path / "a"), b)
    assert "special tokens differ: eos_token '</s>' vs 'cat'" in message


def test_a_student_of_another_team_is_refused_without_reading_it(acme, other, tokenizers, teacher_root):
    theirs = teacher_root / "other" / "tok"
    if not theirs.is_dir():
        make_tokenizer(theirs)
    form = checked(acme, tokenizers["base"], theirs)
    assert "is not a checkpoint of Acme's" in form.errors[form_field_for("lm.student_path")][0]
    assert tokenizer_cache.cached() == 0


def test_derived_students_and_other_kinds_are_not_checked(acme, tokenizers):
    form = StudentForm({})
    form.is_valid()
    lm_checks.check_tokenizers(form, {**config(tokenizers["base"], tokenizers["other"]), "kind": "distill"}, acme)
    derived = config(tokenizers["base"], tokenizers["other"])
    derived["lm"]["student_source"] = "derived"
    lm_checks.check_tokenizers(form, derived, acme)
    assert not form.errors and tokenizer_cache.cached() == 0


def test_oversized_tokenizer_files_are_not_parsed(tokenizers, monkeypatch):
    monkeypatch.setattr(tokenizer_files, "MAX_TOKENIZER_BYTES", 100)
    with pytest.raises(CheckpointError, match="tokenizer files of tok-base take .* at most 100 are read"):
        tokenizer_files.load_tokenizer(tokenizers["base"], "lm.student_path")


def test_a_config_over_the_checkpoint_limits_is_refused_before_the_tokenizer_is_read(tmp_path):
    make_tokenizer(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2", "vocab_size": 10**9}))
    with pytest.raises(CheckpointError, match="vocab_size to 1,000,000,000"):
        tokenizer_files.load_tokenizer(tmp_path, "teacher")
