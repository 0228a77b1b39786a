"""Causal-LM distillation end to end on tiny random GPT-2 / Llama models: modes, students, data, resume."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from distill_core.checkpointing import checkpoint_path
from distill_core.config import ExperimentConfig
from distill_core.distiller import run
from distill_core.errors import ConfigError, DatasetError, RunCancelled
from distill_core.lm.testing import WORDS, make_tiny_lm, write_toy_data
from tests.distill_core.conftest import CancelAt, ListSink


@pytest.fixture(scope="session")
def lm_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("lm")
    return {"gpt2": make_tiny_lm(root / "gpt2", "gpt2", layers=4), "llama": make_tiny_lm(root / "llama", "llama", layers=4),
            "train": write_toy_data(root / "train.jsonl", 48, seed=1),
            "dev": write_toy_data(root / "dev.jsonl", 12, seed=2),
            "test": write_toy_data(root / "test.jsonl", 12, seed=3),
            "chat": write_toy_data(root / "chat.jsonl", 24, seed=4, kind="messages"),
            "text": write_toy_data(root / "text.jsonl", 24, seed=5, kind="text")}


@pytest.fixture
def lm_config(lm_files, tmp_path):
    def make(teacher: str = "gpt2", data: dict | None = None, **sections) -> dict:
        raw = {"name": "lm", "kind": "lm_distill", "seed": 3,
               "data": {"train": str(lm_files["train"]), "dev": str(lm_files["dev"]), "test": str(lm_files["test"]),
                        "format": "jsonl", "max_length": 24, **(data or {})},
               "teacher": {"path": str(lm_files[teacher])},
               "train": {"epochs": 2, "batch_size": 8, "learning_rate": 0.002, "log_every": 1},
               "lm": {"layers": 2, "top_k": 8, "max_new_tokens": 4, "samples": 2, "sample_max_new_tokens": 4},
               "output_dir": str(tmp_path / "out")}
        for section, values in sections.items():
            raw[section] = {**raw.get(section, {}), **values} if isinstance(values, dict) else values
        return raw

    return make


@pytest.mark.parametrize("mode", ["offline", "online", "on_policy"])
def test_each_mode_trains_evaluates_and_exports_a_student(lm_config, tmp_path, mode):
    sink = ListSink()
    results = run(ExperimentConfig.from_dict(lm_config(lm={"mode": mode, "lambda_on_policy": 0.5})), sink=sink,
                  cache_dir=tmp_path / "cache")

    steps = sink.of("step")
    assert [p["step"] for p in steps] == list(range(1, 13))  # 48 examples / 8 = 6 steps per epoch, 2 epochs
    losses = [p["metrics"]["distill_loss"] for p in steps]
    assert all(0 <= value < 1 for value in losses)
    if mode != "on_policy":  # sampled batches are other sequences: their losses are not comparable step to step
        assert sum(losses[-3:]) < sum(losses[:3])
    dev = [p for p in sink.of("eval") if p["split"] == "dev"]
    assert len(dev) == 2 and set(dev[0]["metrics"]) == {"perplexity", "nll", "agreement", "distill_loss"}
    assert results["student"]["perplexity"] > 1 and 0 <= results["student"]["agreement"] <= 1
    assert results["teacher"]["perplexity"] > 1
    assert len(results["samples"]) == 2 and all(s["teacher"] and s["student"] for s in results["samples"])
    assert results["size"]["teacher"]["parameters"] > results["size"]["student"]["parameters"]
    assert results["size"]["student"]["tokens_per_s_batch_8"] > 0 and results["size"]["student"]["time_to_first_token_ms"] > 0
    assert (results["on_policy_batches"] > 0) == (mode == "on_policy")
    assert bool(results["teacher_cache_hits"]) == (mode == "offline")
    from transformers import AutoModelForCausalLM

    exported = AutoModelForCausalLM.from_pretrained(results["export_dir"])
    assert exported.config.n_layer == 2
    assert json.loads((tmp_path / "out" / "experiment.json").read_text())["kind"] == "lm_distill"
    assert not checkpoint_path(tmp_path / "out").exists()


def test_the_offline_cache_is_shared_and_gives_the_same_student(lm_config, tmp_path):
    first = run(ExperimentConfig.from_dict(lm_config(output_dir=str(tmp_path / "a"))), cache_dir=tmp_path / "cache")
    second = run(ExperimentConfig.from_dict(lm_config(output_dir=str(tmp_path / "b"))), cache_dir=tmp_path / "cache")
    assert not any(first["teacher_cache_hits"].values()) and all(second["teacher_cache_hits"].values())
    assert first["student"] == second["student"]
    entries = [p for p in (tmp_path / "cache").iterdir() if not p.name.startswith(".")]
    assert len(entries) == 3  # train, dev, test
    values = __import__("numpy").load(entries[0] / "values.npy", mmap_mode="r")
    assert values.dtype == "float16" and values.shape[1] == 8
    assert __import__("numpy").load(entries[0] / "ids.npy", mmap_mode="r").dtype == "int32"


@pytest.mark.parametrize("mode", ["offline", "on_policy"])
def test_a_resumed_run_matches_an_uninterrupted_one_bitwise(lm_config, tmp_path, mode):
    raw = lm_config(train={"checkpoint_every": 2, "grad_accumulation": 2}, lm={"mode": mode})
    straight = ListSink()
    run(ExperimentConfig.from_dict({**raw, "output_dir": str(tmp_path / "a")}), sink=straight)
    config_b = ExperimentConfig.from_dict({**raw, "output_dir": str(tmp_path / "b")})
    cancel = CancelAt(3)
    with pytest.raises(RunCancelled):
        run(config_b, sink=cancel, should_cancel=cancel.should_cancel)
    resumed = ListSink()
    results = run(config_b, sink=resumed)
    assert results["resumed_from"] == 3
    after = [(p["step"], p["metrics"]) for p in resumed.of("step")]
    assert after == [(p["step"], p["metrics"]) for p in straight.of("step") if p["step"] > 3]
    a, b = load_file(str(tmp_path / "a" / "model.safetensors")), load_file(str(tmp_path / "b" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_derived_student_copies_the_picked_teacher_layers(lm_files):
    from distill_core.lm.models import build_student, load_causal_lm
    from distill_core.lm.options import LMConfig

    teacher, tokenizer = load_causal_lm(lm_files["llama"], torch.device("cpu"))
    for pick, picked in (("uniform", [1, 3]), ("top", [2, 3]), ("bottom", [0, 1])):
        student, _, info = build_student(LMConfig(layers=2, layer_pick=pick), teacher, tokenizer, torch.device("cpu"))
        assert info["picked"] == picked
        for j, t in enumerate(picked):
            assert torch.equal(student.model.layers[j].mlp.up_proj.weight, teacher.model.layers[t].mlp.up_proj.weight)
        assert torch.equal(student.model.embed_tokens.weight, teacher.model.embed_tokens.weight)


def test_a_preset_student_has_the_chosen_depth_and_width(lm_config):
    results = run(ExperimentConfig.from_dict(lm_config("llama", lm={"student_source": "preset", "layers": 1,
                                                                    "hidden_size": 16, "num_heads": 2}, output_dir=None)))
    assert results["student_info"] == {"source": "preset", "layers": 1}
    assert results["size"]["compression"] > 2


def test_a_student_with_another_vocabulary_is_refused_naming_the_difference(lm_config, tmp_path):
    other = make_tiny_lm(tmp_path / "other", "gpt2", layers=1, words=WORDS[:-3] + ("zebra",))
    raw = lm_config(lm={"student_source": "checkpoint", "student_path": str(other)})
    with pytest.raises(ConfigError, match="share a tokenizer.*'zebra'") as err:
        run(ExperimentConfig.from_dict(raw))
    assert err.value.field == "lm.student_path"


def test_a_registered_checkpoint_student_with_the_same_tokenizer_trains(lm_config, tmp_path):
    student = make_tiny_lm(tmp_path / "student", "gpt2", layers=1, seed=9)
    results = run(ExperimentConfig.from_dict(lm_config(lm={"student_source": "checkpoint", "student_path": str(student),
                                                          "mode": "online"}, output_dir=None)))
    assert results["student_info"] == {"source": "checkpoint", "layers": 1}


@pytest.mark.parametrize("kind", ["chat", "text"])
def test_chat_messages_and_plain_text_train_without_a_dev_file(lm_config, lm_files, kind):
    raw = lm_config("llama" if kind == "chat" else "gpt2", data={"train": str(lm_files[kind]), "dev": None,
                                                                 "test": None, "max_length": 32}, output_dir=None)
    results = run(ExperimentConfig.from_dict(raw))
    assert results["examples"] == {"train": 22, "dev": 2} and results["test_split"] == "dev"
    if kind == "chat":  # the template's prompt ("<s> user : ... </s> <s> assistant :") is masked
        assert results["samples"][0]["prompt"].endswith("assistant :")


def test_chat_rendering_masks_the_prompt(lm_files):
    from transformers import AutoTokenizer

    from distill_core.lm.data import read_rows, tokenise
    from distill_core.lm.options import LMConfig

    tokenizer = AutoTokenizer.from_pretrained(lm_files["llama"])
    split = tokenise(read_rows(lm_files["chat"], LMConfig()), tokenizer, 64, "train")
    words = tokenizer.convert_ids_to_tokens(split.ids[0][split.starts[0]:].tolist())
    assert words[-1] == "</s>" and "assistant" not in words and words[0] == "the"


def test_rows_without_a_known_key_are_refused_with_the_line(lm_config, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "x"}\n')
    with pytest.raises(DatasetError, match="bad.jsonl line 1 has none of the keys"):
        run(ExperimentConfig.from_dict(lm_config(data={"train": str(bad)})))


def test_lm_options_are_validated_with_their_field():
    with pytest.raises(ConfigError) as err:
        ExperimentConfig.from_dict({"kind": "lm_distill", "data": {"train": "x"}, "teacher": {"path": "t"},
                                    "lm": {"beta": 1.5}})
    assert err.value.field == "lm.beta"
    classifier = ExperimentConfig.from_dict({"data": {"train": "x"}, "teacher": {"path": "t"}})
    assert "lm" not in classifier.to_dict()  # other kinds' JSON and checkpoint fingerprints are unchanged
