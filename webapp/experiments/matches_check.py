"""Check a config against the chosen teacher before it is queued: student options, matches, stages.

The student is built on the meta device with a tiny vocabulary: shapes and options are all the
checks need, so nothing is allocated and a T6 student costs as little as a TextCNN. The teacher
is described by `inspect_checkpoint`'s info (num_layers, hidden_size, num_heads). A causal-LM student
derived from the teacher or preset in its family is described by its `lm` options and the teacher's info.
"""

from __future__ import annotations

from typing import Any

from distill_core.errors import ConfigError

CHECK_VOCAB_SIZE = 16  # above every special-token id a student option may name (sep_id defaults to 2)
INIT_FIELD = "student.options.init_from_teacher"


def tiny_student(config: dict[str, Any]):
    """The config's student, built without weights (raises ConfigError naming a bad option)."""
    import torch

    from distill_core.students import build_student

    student = config["student"]
    options = {k: v for k, v in student.get("options", {}).items() if k != "init_from_teacher"}
    num_labels = max(2, len(config["data"].get("labels") or []))
    with torch.device("meta"):
        return build_student(student["type"], CHECK_VOCAB_SIZE, num_labels, student["embedding_dim"], options)


def lm_student(config: dict[str, Any], teacher_info: dict[str, Any]):
    """The shape of a derived or preset causal-LM student (lm.matches.DecoderShape), or None for a checkpoint
    student, whose files the worker reads."""
    from types import SimpleNamespace

    from distill_core.lm.matches import DecoderShape

    lm = config["lm"]
    if lm["student_source"] == "checkpoint":
        return None
    preset = lm["student_source"] == "preset"
    hidden = (preset and lm["hidden_size"]) or teacher_info.get("hidden_size")
    heads = (preset and lm["num_heads"]) or teacher_info.get("num_heads")
    shape = SimpleNamespace(num_hidden_layers=lm["layers"], hidden_size=hidden, num_attention_heads=heads)
    return DecoderShape(SimpleNamespace(config=shape), "causal LM")


def check_config(config: dict[str, Any], teacher_info: dict[str, Any]) -> None:
    """Raise ConfigError (with its config field) for what this teacher and student cannot run."""
    if config.get("kind") == "lm_distill":
        _check_lm_matches(config, teacher_info)
        return
    if config.get("kind") == "finetune_teacher":
        return  # no student: the teacher itself is trained
    student = tiny_student(config)
    vocab = config["student"]["vocab"]
    if config["student"].get("options", {}).get("init_from_teacher"):
        _check_init(student, teacher_info, vocab)
        positions = teacher_info.get("max_position_embeddings")
    else:
        positions = getattr(getattr(student, "options", None), "max_position_embeddings", None)
    if config["student"]["type"] == "transformer" and isinstance(positions, int) \
            and config["data"]["max_length"] > positions:  # the run would stop at its first batch
        raise ConfigError(f"The transformer student reads at most {positions} tokens; lower max_length "
                          f"(got {config['data']['max_length']}).", field="data.max_length")
    from distill_core.config import ExperimentConfig
    from distill_core.matches import parse_matches, validate_matches

    parsed = ExperimentConfig.from_dict({k: v for k, v in config.items() if k != "output_dir"})
    staged = bool(config.get("stages"))
    for i, stage in enumerate(parsed.stage_configs()):
        try:
            validate_matches(parse_matches(stage.matches), teacher_info, student, vocab)
        except ConfigError as exc:
            if not staged:
                raise
            raise ConfigError(f"{stage.name}: {exc.message}", field=f"stages.{i}.{exc.field or 'matches'}") from None


def _check_lm_matches(config: dict[str, Any], teacher_info: dict[str, Any]) -> None:
    """The run's matches, or each stage's (a stage does not inherit the run's), against the LM student's shape."""
    from distill_core.matches import parse_matches, validate_matches

    student = lm_student(config, teacher_info)
    if student is None:
        return
    stages = config.get("stages") or []
    for i, stage in enumerate(stages or [{"matches": config.get("matches")}]):
        if not stage.get("matches"):
            continue
        try:
            validate_matches(parse_matches(stage["matches"]), {**teacher_info, "has_attentions": False}, student)
        except ConfigError as exc:
            if not stages:
                raise
            raise ConfigError(f"{stage.get('name') or f'stage {i + 1}'}: {exc.message}",
                              field=f"stages.{i}.{exc.field or 'matches'}") from None


def _check_init(student, info: dict[str, Any], vocab: str) -> None:
    """init_from_teacher copies the teacher's layers, so widths and depth must fit (as _copy_teacher checks)."""
    if vocab != "teacher":
        raise ConfigError("A student initialised from the teacher reads the teacher's tokens: set the vocabulary "
                          "to 'teacher'.", field="student.vocab")
    opts = student.options
    for what, mine, theirs in (("hidden size", opts.hidden, info.get("hidden_size")),
                               ("attention heads", opts.heads, info.get("num_heads"))):
        if isinstance(theirs, int) and mine != theirs:
            raise ConfigError(f"The student's {what} is {mine} but the teacher's is {theirs}; choose a preset of the "
                              f"teacher's width or do not initialise from the teacher.", field=INIT_FIELD)
    layers = info.get("num_layers")
    if isinstance(layers, int) and opts.layers > layers:
        raise ConfigError(f"The student has {opts.layers} layers but the teacher only {layers}; choose a shallower "
                          f"student.", field=INIT_FIELD)


def generate_rows(config: dict[str, Any], teacher_info: dict[str, Any], strategy: str, feature: str, loss: str,
                  weight: float) -> list[dict[str, Any]]:
    """Match rows for every student layer by a layer map; a projection wherever the widths differ."""
    from distill_core.matches import WIDTH_FREE, generate

    if config.get("kind") == "lm_distill":
        student = lm_student(config, teacher_info)
        if student is None:
            raise ConfigError("Matches are generated from the student's layers and widths; for a checkpoint student "
                              "edit the rows instead.", field="matches")
    else:
        student = tiny_student(config)
    t_layers, t_hidden = teacher_info.get("num_layers"), teacher_info.get("hidden_size")
    if not (isinstance(t_layers, int) and isinstance(t_hidden, int)):
        raise ConfigError("The teacher's config does not give its layer count and hidden size, so matches cannot "
                          "be generated.", field="matches")
    name = getattr(student, "name", type(student).__name__)
    if feature == "attention":
        s_layers = student.num_attentions() if getattr(student, "has_attentions", False) else 0
    else:
        s_layers = max(student.num_hidden_states() - 1, 1 if feature == "embedding" else 0)
    if s_layers < 1:
        what = "attention maps" if feature == "attention" else "layers above its embeddings"
        raise ConfigError(f"The {name} student has no {what} to map onto the teacher's; choose another feature "
                          f"or student.", field="matches")
    rows = [m.to_dict() for m in generate(strategy, feature, loss, t_layers, s_layers,
                                          weight=weight)]
    for row in rows:
        if feature != "attention" and loss not in WIDTH_FREE:
            width = student.hidden_size(row["layer_S"])
            row["proj"] = None if width == t_hidden else ["linear", width, t_hidden]
    return rows
