"""Typed experiment config: JSON in, JSON out, validated with actionable messages.

The web form, the database row, the CLI and the checkpoint all hold the same JSON, which
`ExperimentConfig.from_dict` turns back into these dataclasses.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distill_core.errors import ConfigError

DATA_FORMATS = ("tsv", "csv", "jsonl")
STUDENT_TYPES = ("textcnn", "bilstm", "bigru", "transformer")
STUDENT_VOCABS = ("char", "word", "teacher")
EMBEDDING_INITS = ("auto", "random", "teacher", "file")  # embedding_init.py
AUGMENT_REPLACE = ("frequency", "teacher_neighbours")  # augment.py
KD_LOSSES = ("kl", "ce", "mse", "bce")
OPTIMIZERS = ("adamw", "adam", "sgd", "adadelta")
LR_SCHEDULES = ("constant", "linear", "cosine")
TEMPERATURE_SCHEDULES = ("constant", "linear", "cosine", "flsw", "cwsm")
WEIGHT_SCHEDULES = ("constant", "linear_growth", "linear_decay")
AMP_MODES = ("off", "bf16", "fp16")
BEST_METRICS = ("accuracy", "macro_f1")
RUN_KINDS = ("distill", "finetune_teacher")


@dataclass
class DataConfig:
    """Where the examples are and how to read them."""

    train: str = ""
    dev: str | None = None
    test: str | None = None
    format: str = "tsv"
    has_header: bool = False
    # Column names (with a header / JSONL keys) or 0-based indices (headerless TSV/CSV).
    text_column: int | str = 0
    text_pair_column: int | str | None = None
    label_column: int | str = 1
    # Label names in class-index order. A file's label value may be a name from this
    # list or an integer index into it.
    labels: list[str] = field(default_factory=list)
    max_length: int = 32
    # Multi-label: a row's label field holds several names (or indices) split by label_separator
    # (a JSON list in JSONL); soft targets become per-class sigmoids with temperature.
    multi_label: bool = False
    label_separator: str = ","


@dataclass
class TeacherConfig:
    """A local Hugging Face checkpoint directory (AutoModelForSequenceClassification), or a Hub
    model id written `hub:org/name` or `hub:org/name@revision` (downloaded at run start, hub.py).

    `ensemble` adds more teachers as [{"path": ..., "weight": ...}]; the soft targets are the
    weighted mean of all teachers' logits (`weight` is this first teacher's share).
    """

    path: str = ""
    weight: float = 1.0
    ensemble: list[dict[str, Any]] = field(default_factory=list)

    def members(self) -> list[tuple[str, float]]:
        return [(self.path, self.weight)] + [(m["path"], float(m.get("weight", 1.0))) for m in self.ensemble]


@dataclass
class AugmentConfig:
    """Data augmentation of the train split (Tang et al. 2019); see augment.py."""

    enabled: bool = False
    n_iter: int = 10  # augmented copies tried per example (duplicates are dropped)
    p_mask: float = 0.1
    p_replace: float = 0.1
    p_ng: float = 0.25
    ngram_range: list[int] = field(default_factory=lambda: [1, 5])
    replace_window: int = 20  # frequency ranks either side to draw a replacement from
    # frequency: a unit of similar corpus frequency; teacher_neighbours: one of the `neighbours` nearest
    # whole-word pieces in the teacher's input-embedding space (cosine; TinyBERT's idea without GloVe)
    replace: str = "frequency"
    neighbours: int = 15
    max_examples: int = 200_000  # cap on augmented copies (teacher inference time grows with it)


@dataclass
class StudentConfig:
    """Which student to build; `options` go to the student's constructor."""

    type: str = "textcnn"
    vocab: str = "char"  # char | word vocabulary from the train split, or the teacher's pieces
    embedding_dim: int = 128
    # auto | random | teacher (its input embeddings; vocab "teacher") | file (embedding_file; char/word
    # vocab); a learned projection bridges other widths (embedding_init.py)
    embedding_init: str = "random"
    embedding_file: str | None = None  # word2vec/GloVe text format (word_vectors.py)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class KDConfig:
    """Prediction-layer KD: alpha*CE(student, y) + (1-alpha)*T^2*KL(teacher/T || student/T)."""

    temperature: float = 2.0
    alpha: float = 0.8  # weight of the hard-label cross-entropy
    t2_scaling: bool = True
    loss: str = "kl"
    # constant | linear / cosine (from `temperature` to `temperature_final`) | flsw / cwsm (TextBrewer's
    # per-example schedules, with beta and gamma)
    temperature_schedule: str = "constant"
    temperature_final: float | None = None
    schedule_beta: float = 1.0
    schedule_gamma: float = 2.0
    kd_weight: float | None = None  # weight of the soft-label term; None means 1 - alpha
    kd_weight_schedule: str = "constant"  # constant | linear_growth | linear_decay, a factor on kd_weight
    hard_weight_schedule: str = "constant"  # the same, a factor on alpha


@dataclass
class TrainConfig:
    """Optimisation and evaluation cadence."""

    epochs: int = 3
    batch_size: int = 64
    learning_rate: float = 1e-3
    optimizer: str = "adamw"
    weight_decay: float = 0.0
    lr_schedule: str = "linear"  # after warm-up: constant, linear decay to 0, or cosine decay to 0
    warmup_ratio: float = 0.0  # fraction of the steps spent warming the learning rate up from 0
    grad_clip: float | None = 1.0  # max global gradient norm; None turns clipping off
    grad_accumulation: int = 1  # batches per optimisation step
    checkpoint_every: int = 100  # optimisation steps between resumable checkpoints (and every epoch end)
    early_stopping_patience: int = 0  # evaluations without a better dev score before stopping; 0 = never
    best_metric: str = "accuracy"  # dev metric that picks the best student: accuracy | macro_f1
    amp: str = "off"  # off | bf16 | fp16 mixed precision (CUDA; bf16 also works on CPU)
    log_every: int = 10  # steps between step-metric events
    eval_every: int = 0  # steps between dev evaluations; 0 = once per epoch
    max_steps: int | None = None
    device: str = "auto"  # auto | cpu | cuda | cuda:N


@dataclass
class StageConfig:
    """One stage of a multi-stage run (e.g. TinyBERT: intermediate layers first, then predictions).

    Unset values fall back on the run's train/kd settings; `matches` is a list or a preset name.
    Each stage gets a fresh optimiser and learning-rate schedule; steps continue across stages.
    """

    name: str = ""
    epochs: int = 1
    learning_rate: float | None = None
    alpha: float | None = None  # hard-label weight
    kd_weight: float | None = None  # soft-label weight; None means 1 - alpha
    temperature: float | None = None
    matches: list[dict[str, Any]] | str = field(default_factory=list)


@dataclass
class ExperimentConfig:
    """One distillation experiment."""

    name: str = "experiment"
    # distill: teacher -> student. finetune_teacher: train teacher.path on hard labels and save the
    # result in output_dir as a new teacher checkpoint.
    kind: str = "distill"
    seed: int = 42
    data: DataConfig = field(default_factory=DataConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    kd: KDConfig = field(default_factory=KDConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    # Intermediate-layer matches (a list of {layer_T, layer_S, feature, loss, weight, proj}, or a preset
    # name); see matches.py. Needs student.vocab "teacher" and a student with those features.
    matches: list[dict[str, Any]] | str = field(default_factory=list)
    # Multi-stage runs: a list of StageConfig objects; empty means one stage from train/kd/matches.
    stages: list[dict[str, Any]] = field(default_factory=list)
    output_dir: str | None = None

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ExperimentConfig:
        """Build and validate a config from its JSON form; unknown keys are an error."""
        if not isinstance(raw, dict):
            raise ConfigError("The config must be a JSON object.")
        cfg = _build(cls, raw, "")
        cfg.validate()
        return cfg

    @classmethod
    def from_json(cls, text: str) -> ExperimentConfig:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"The config is not valid JSON: {exc}") from exc
        return cls.from_dict(raw)

    @classmethod
    def load(cls, path: str | Path) -> ExperimentConfig:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))

    def stage_configs(self) -> list[StageConfig]:
        """The stages to run, each complete (defaults filled from train/kd/matches)."""
        if not self.stages:
            return [StageConfig(name="main", epochs=self.train.epochs, learning_rate=self.train.learning_rate,
                                alpha=self.kd.alpha, kd_weight=self.kd.kd_weight, temperature=self.kd.temperature,
                                matches=self.matches)]
        out = []
        for i, raw in enumerate(self.stages):
            if not isinstance(raw, dict):
                raise ConfigError(f"stages.{i} must be an object.", field=f"stages.{i}")
            stage = _build(StageConfig, raw, f"stages.{i}.")
            stage.name = stage.name or f"stage {i + 1}"
            stage.learning_rate = self.train.learning_rate if stage.learning_rate is None else stage.learning_rate
            stage.alpha = self.kd.alpha if stage.alpha is None else stage.alpha
            stage.temperature = self.kd.temperature if stage.temperature is None else stage.temperature
            out.append(stage)
        return out

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def validate(self) -> None:
        """Check ranges and names; paths are checked when the run opens them."""
        d, s, k, t = self.data, self.student, self.kd, self.train
        _check(bool(self.name and self.name.strip()), "name", "Give the experiment a name.")
        _choice(self.kind, RUN_KINDS, "kind")
        _check(bool(d.train), "data.train", "Choose a training file.")
        _choice(d.format, DATA_FORMATS, "data.format")
        _check(1 <= d.max_length <= 4096, "data.max_length", "max_length must be between 1 and 4096.")
        _check(not d.multi_label or bool(d.label_separator), "data.label_separator",
               "A multi-label dataset needs a label_separator (e.g. \",\").")
        _check(bool(self.teacher.path), "teacher.path", "Choose a teacher checkpoint directory.")
        _check(math.isfinite(self.teacher.weight) and self.teacher.weight > 0, "teacher.weight",
               f"teacher.weight must be greater than 0 (got {self.teacher.weight}).")
        for i, member in enumerate(self.teacher.ensemble):
            where = f"teacher.ensemble.{i}"
            _check(isinstance(member, dict) and set(member) <= {"path", "weight"} and isinstance(member.get("path"), str)
                   and bool(member.get("path")), where, f"{where} must be {{\"path\": \"...\", \"weight\": 1.0}} "
                   f"(got {member!r}).")
            weight = member.get("weight", 1.0)
            _check(isinstance(weight, (int, float)) and not isinstance(weight, bool) and math.isfinite(weight)
                   and weight > 0, f"{where}.weight", f"{where}.weight must be greater than 0 (got {weight!r}).")
        a = self.augment
        for name in ("p_mask", "p_replace", "p_ng"):
            value = getattr(a, name)
            _check(math.isfinite(value) and 0.0 <= value <= 1.0, f"augment.{name}",
                   f"augment.{name} is a probability between 0 and 1 (got {value}).")
        _check(a.p_mask + a.p_replace <= 1.0, "augment.p_replace", "p_mask + p_replace must be at most 1.")
        _check(1 <= a.n_iter <= 1000, "augment.n_iter", "augment.n_iter must be between 1 and 1000.")
        _check(len(a.ngram_range) == 2 and all(isinstance(n, int) and not isinstance(n, bool) for n in a.ngram_range)
               and 1 <= a.ngram_range[0] <= a.ngram_range[1], "augment.ngram_range",
               f"augment.ngram_range must be [min, max] with 1 <= min <= max (got {a.ngram_range}).")
        _check(a.replace_window >= 1, "augment.replace_window", "augment.replace_window must be at least 1.")
        _check(a.max_examples >= 1, "augment.max_examples", "augment.max_examples must be at least 1.")
        _choice(a.replace, AUGMENT_REPLACE, "augment.replace")
        _check(1 <= a.neighbours <= 1000, "augment.neighbours", "augment.neighbours must be between 1 and 1000.")
        _check(not (a.enabled and d.text_pair_column is not None), "augment.enabled",
               "Augmentation of sentence pairs is not supported; turn augment.enabled off for pair datasets.")
        _choice(s.type, STUDENT_TYPES, "student.type")
        _choice(s.vocab, STUDENT_VOCABS, "student.vocab")
        _check(1 <= s.embedding_dim <= 4096, "student.embedding_dim", "embedding_dim must be between 1 and 4096.")
        self._validate_embedding_init()
        _check(math.isfinite(k.temperature) and k.temperature > 0, "kd.temperature",
               f"Temperature must be greater than 0 (got {k.temperature}).")
        _check(math.isfinite(k.alpha) and 0.0 <= k.alpha <= 1.0, "kd.alpha",
               f"alpha (hard-label weight) must be between 0 and 1 (got {k.alpha}).")
        _choice(k.loss, KD_LOSSES, "kd.loss")
        _choice(k.temperature_schedule, TEMPERATURE_SCHEDULES, "kd.temperature_schedule")
        if k.temperature_schedule in ("linear", "cosine"):
            _check(k.temperature_final is not None and math.isfinite(k.temperature_final) and k.temperature_final > 0,
                   "kd.temperature_final", f"A {k.temperature_schedule} temperature schedule needs temperature_final "
                   f"greater than 0 (got {k.temperature_final}).")
        for name in ("schedule_beta", "schedule_gamma"):
            _check(math.isfinite(getattr(k, name)) and getattr(k, name) >= 0, f"kd.{name}",
                   f"{name} must be 0 or more (got {getattr(k, name)}).")
        _check(k.kd_weight is None or (math.isfinite(k.kd_weight) and k.kd_weight >= 0), "kd.kd_weight",
               f"kd_weight must be 0 or more, or null for 1 - alpha (got {k.kd_weight}).")
        _choice(k.kd_weight_schedule, WEIGHT_SCHEDULES, "kd.kd_weight_schedule")
        _choice(k.hard_weight_schedule, WEIGHT_SCHEDULES, "kd.hard_weight_schedule")
        _check(1 <= t.epochs <= 1000, "train.epochs", "epochs must be between 1 and 1000.")
        _check(1 <= t.batch_size <= 65536, "train.batch_size", "batch_size must be between 1 and 65536.")
        _check(math.isfinite(t.learning_rate) and 0 < t.learning_rate <= 10, "train.learning_rate",
               f"learning_rate must be greater than 0 and at most 10 (got {t.learning_rate}).")
        _choice(t.optimizer, OPTIMIZERS, "train.optimizer")
        _choice(t.lr_schedule, LR_SCHEDULES, "train.lr_schedule")
        _check(math.isfinite(t.warmup_ratio) and 0.0 <= t.warmup_ratio < 1.0, "train.warmup_ratio",
               f"warmup_ratio must be at least 0 and below 1 (got {t.warmup_ratio}).")
        _check(t.grad_clip is None or (math.isfinite(t.grad_clip) and t.grad_clip > 0), "train.grad_clip",
               f"grad_clip must be greater than 0, or null for no clipping (got {t.grad_clip}).")
        _check(t.log_every >= 1, "train.log_every", "log_every must be at least 1.")
        _check(t.eval_every >= 0, "train.eval_every", "eval_every must be 0 (per epoch) or more.")
        _check(t.max_steps is None or t.max_steps >= 1, "train.max_steps", "max_steps must be at least 1.")
        _check(1 <= t.grad_accumulation <= 1024, "train.grad_accumulation", "grad_accumulation must be 1 to 1024.")
        _check(t.checkpoint_every >= 1, "train.checkpoint_every", "checkpoint_every must be at least 1 step.")
        _check(t.early_stopping_patience >= 0, "train.early_stopping_patience",
               "early_stopping_patience must be 0 (off) or more.")
        _choice(t.best_metric, BEST_METRICS, "train.best_metric")
        _choice(t.amp, AMP_MODES, "train.amp")
        self._validate_matches_and_stages()

    def _validate_embedding_init(self) -> None:
        s = self.student
        _choice(s.embedding_init, EMBEDDING_INITS, "student.embedding_init")
        if s.embedding_init in ("teacher", "file"):
            _check(s.type != "transformer", "student.embedding_init",
                   "Embedding initialisation is for TextCNN, BiLSTM and BiGRU; a transformer student starts from "
                   "the teacher with options.init_from_teacher.")
        if s.embedding_init == "teacher":
            _check(s.vocab == "teacher", "student.embedding_init",
                   "Initialising from the teacher's embeddings needs the teacher's word pieces (student.vocab "
                   "\"teacher\"); for a word vocabulary use a word-vector file.")
        if s.embedding_init == "file" or (s.embedding_init == "auto" and s.embedding_file):
            _check(bool(s.embedding_file), "student.embedding_file", "Choose a word-vector file.")
            _check(s.vocab in ("word", "char"), "student.embedding_file",
                   "A word-vector file initialises a char or word vocabulary; the teacher's pieces start from "
                   "the teacher's own embeddings (embedding_init \"teacher\").")
            _check(s.type != "transformer", "student.embedding_file",
                   "A word-vector file initialises TextCNN, BiLSTM and BiGRU students only.")
        else:
            _check(not s.embedding_file, "student.embedding_file",
                   f"A word-vector file is only read with embedding_init \"file\" or \"auto\" (got "
                   f"{s.embedding_init!r}).")

    def _validate_matches_and_stages(self) -> None:
        _check(len(self.stages) <= 20, "stages", "At most 20 stages.")
        for i, stage in enumerate(self.stage_configs()):
            where = f"stages.{i}." if self.stages else ""
            _check(1 <= stage.epochs <= 1000, f"{where}epochs" if where else "train.epochs",
                   "epochs must be between 1 and 1000.")
            _check(math.isfinite(stage.learning_rate) and 0 < stage.learning_rate <= 10,
                   f"{where}learning_rate" if where else "train.learning_rate",
                   f"learning_rate must be greater than 0 and at most 10 (got {stage.learning_rate}).")
            _check(math.isfinite(stage.alpha) and 0 <= stage.alpha <= 1, f"{where}alpha" if where else "kd.alpha",
                   f"alpha (hard-label weight) must be between 0 and 1 (got {stage.alpha}).")
            _check(stage.kd_weight is None or (math.isfinite(stage.kd_weight) and stage.kd_weight >= 0),
                   f"{where}kd_weight" if where else "kd.kd_weight", "kd_weight must be 0 or more.")
            _check(math.isfinite(stage.temperature) and stage.temperature > 0,
                   f"{where}temperature" if where else "kd.temperature",
                   f"Temperature must be greater than 0 (got {stage.temperature}).")
            if not stage.matches:
                continue
            from distill_core.matches import parse_matches  # imports torch: only when there are matches

            try:
                parse_matches(stage.matches)
            except ConfigError as exc:
                if where:
                    raise ConfigError(f"{stage.name}: {exc.message}", field=where + (exc.field or "matches")) from None
                raise


def _check(ok: bool, field_name: str, message: str) -> None:
    if not ok:
        raise ConfigError(message, field=field_name)


def _choice(value: str, allowed: tuple[str, ...], field_name: str) -> None:
    if value not in allowed:
        raise ConfigError(f"{field_name}={value!r} is not one of: {', '.join(allowed)}.", field=field_name)


def _build(cls: type, raw: dict[str, Any], prefix: str) -> Any:
    """Instantiate dataclass `cls` from `raw`, recursing into nested dataclasses."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        where = prefix.rstrip(".") or "the config"
        raise ConfigError(f"Unknown key(s) in {where}: {', '.join(unknown)}.", field=prefix + unknown[0])
    kwargs: dict[str, Any] = {}
    for name, value in raw.items():
        f = fields[name]
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if dataclasses.is_dataclass(default):
            if not isinstance(value, dict):
                raise ConfigError(f"{prefix}{name} must be an object.", field=prefix + name)
            kwargs[name] = _build(type(default), value, f"{prefix}{name}.")
        else:
            kwargs[name] = _coerce(value, str(f.type), prefix + name)
    return cls(**kwargs)


_TYPE_NAMES = {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false",
               "list": "a list", "dict": "an object"}


def _coerce(value: Any, annotation: str, path: str) -> Any:
    """Check `value` against the field's annotation ("int | str | None"); ints pass for floats."""
    allowed = [part.strip().split("[")[0] for part in annotation.split("|")]
    if value is None:
        if "None" in allowed:
            return None
        raise ConfigError(f"{path} must not be empty.", field=path)
    if isinstance(value, bool):
        ok = "bool" in allowed
    elif isinstance(value, int):
        ok = "int" in allowed or "float" in allowed
        if ok and "int" not in allowed:
            value = float(value)
    else:
        ok = any(isinstance(value, {"float": float, "str": str, "list": list, "dict": dict}.get(t, ())) for t in allowed)
    if not ok:
        wanted = " or ".join(_TYPE_NAMES[t] for t in allowed if t in _TYPE_NAMES)
        raise ConfigError(f"{path} must be {wanted} (got {value!r}).", field=path)
    return value
