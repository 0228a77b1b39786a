"""Greedy streaming for Try it: the same text as generate(), bounded in tokens, and models loaded within bounds."""

from __future__ import annotations

import json

import pytest
import torch

from distill_core.errors import CheckpointError
from distill_core.lm.evaluate import generate
from distill_core.lm.stream import load_bounded, stream_greedy
from distill_core.lm.testing import make_tiny_lm


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_lm(tmp_path_factory.mktemp("lm") / "gpt2", "gpt2", layers=2)


def test_each_step_extends_the_text_and_the_last_equals_generate(tiny):
    torch.set_num_threads(1)
    model, tokenizer = load_bounded(tiny, 10**9, "teacher")
    texts = list(stream_greedy(model, tokenizer, "what does the red cat ?", 8, seconds=60))
    assert 1 <= len(texts) <= 8 and all(b.startswith(a) for a, b in zip(texts, texts[1:], strict=False))
    prompt = torch.tensor(tokenizer("what does the red cat ?")["input_ids"])
    assert texts[-1] == generate(model, tokenizer, [prompt], torch.device("cpu"), 8)[0]


def test_a_long_prompt_keeps_its_end_within_the_positions(tiny):
    model, tokenizer = load_bounded(tiny, 10**9, "teacher")
    texts = list(stream_greedy(model, tokenizer, "the cat " * 200, 4, seconds=60))  # 400 tokens, 128 positions
    assert len(texts) <= 4


def test_weights_over_the_limit_are_not_loaded(tiny):
    with pytest.raises(CheckpointError, match="at most 0 MB are loaded"):
        load_bounded(tiny, 0, "student")


def test_a_config_over_the_checkpoint_limits_is_refused(tmp_path, tiny):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_layer": 100_000}))
    with pytest.raises(CheckpointError, match="n_layer to 100,000"):
        load_bounded(tmp_path, 10**9, "teacher")
