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

from distill_core import options
from distill_core.errors import ConfigError
from distill_core.lm.options import LMConfig
from distill_core.lm.options import validate_run as validate_lm
from distill_core.options import build as _build
from distill_core.options import opt, registry_names

DATA_FORMATS = ("tsv", "csv", "jsonl", "parquet", "hf")  # hf: a datasets save_to_disk directory
STUDENT_VOCABS = ("char", "word", "teacher")
EMBEDDING_INITS = ("auto", "random", "teacher", "file")  # embedding_init.py
PROJECTIONS = ("once", "frozen", "learned")  # embedding_init.py
AUGMENT_REPLACE = ("frequency", "teacher_neighbours")  # augment.py
LR_SCHEDULES = ("constant", "linear", "cosine")
AMP_MODES = ("off", "bf16", "fp16")
BUCKETING_MODES = ("auto", "on", "off")
BEST_METRICS = ("accuracy", "macro_f1")
RUN_KINDS = ("distill", "finetune_teacher", "lm_distill")
# Names that a registry holds are read from it (students, KD losses, schedules, optimisers): no copy here.
OPTIMIZERS = registry_names("distill_core.optimizers", "optimizers")
STUDENTS = registry_names("distill_core.student_options", "student_types")
KD_LOSSES = registry_names("distill_core.losses", "kd_losses")
TEMPERATURE_SCHEDULES = registry_names("distill_core.schedules", "temperature_schedules")
WEIGHT_SCHEDULES = registry_names("distill_core.schedules", "weight_schedules")
SCHEDULE_FACTOR = "A factor over training: constant, linear_growth (0 to 1) or linear_decay (1 to 0)."
BIG = 10**9
TUNE_MAX_TRIALS = 36


# Each option is declared once with opt() (options.py): default, help text, bounds, choices. validate()
# checks them all; the web form, the API schema, `python -m distill_core describe` and the option table
# in docs/DISTILL_CORE.md are generated from them. Fields without opt() (paths, lists, objects) are
# checked in validate() by hand.


@dataclass
class DataConfig:
    """Where the examples are and how to read them."""

    train: str = ""
    dev: str | None = None
    test: str | None = None
    format: str = opt("tsv", "File format of the splits.", choices=DATA_FORMATS)
    has_header: bool = False
    # Column names (with a header / JSONL keys) or 0-based indices (headerless TSV/CSV).
    text_column: int | str = 0
    text_pair_column: int | str | None = None
    label_column: int | str = 1
    # Label names in class-index order. A file's label value may be a name from this
    # list or an integer index into it.
    labels: list[str] = field(default_factory=list)
    max_length: int = opt(32, "Tokens per example; longer texts are truncated.", low=1, high=4096)
    multi_label: bool = opt(False, "A row's label field holds several labels (split by label_separator; a JSON "
                                   "list in JSONL); soft targets become per-class sigmoids with temperature.")
    label_separator: str = ","


@dataclass
class TeacherConfig:
    """A local Hugging Face checkpoint directory (AutoModelForSequenceClassification), or a Hub
    model id written `hub:org/name` or `hub:org/name@revision` (downloaded at run start, hub.py).

    `ensemble` adds more teachers as [{"path": ..., "weight": ...}]; the soft targets are the
    weighted mean of all teachers' logits (`weight` is this first teacher's share).
    """

    path: str = ""
    weight: float = opt(1.0, "This teacher's share of the ensemble's soft targets.", low=0.0, low_open=True,
                        high=1000.0, what="teacher.weight")
    precision: str = opt("auto", "Teacher passes: auto = exact to the save (teachers.compute_dtype); bfloat16 = faster "
                                 "where the hardware has it, logits rounded by ~1e-2.", choices=("auto", "float32", "bfloat16"))
    ensemble: list[dict[str, Any]] = field(default_factory=list)

    def members(self) -> list[tuple[str, float]]:
        return [(self.path, self.weight)] + [(m["path"], float(m.get("weight", 1.0))) for m in self.ensemble]


@dataclass
class AugmentConfig:
    """Data augmentation of the train split (Tang et al. 2019); see augment.py."""

    enabled: bool = opt(False, "Masking, frequency-matched replacement and n-gram sampling (Tang et al. 2019), "
                               "labelled by the teacher. Single sentences only.")
    n_iter: int = opt(10, "Augmented copies tried per example (duplicates are dropped).", low=1, high=1000)
    p_mask: float = opt(0.1, "Probability of masking a token.", low=0.0, high=1.0)
    p_replace: float = opt(0.1, "Probability of replacing a token by one of similar frequency.", low=0.0, high=1.0)
    p_ng: float = opt(0.25, "Probability of keeping only an n-gram of the example.", low=0.0, high=1.0)
    ngram_range: list[int] = opt([1, 5], "min, max n-gram length.", low=1, high=100, length=(2, 2),
                                 what="augment.ngram_range")
    replace_window: int = opt(20, "Frequency ranks either side to draw a replacement from.", low=1,
                              high=1_000_000)
    replace: str = opt("frequency", "What a replaced unit becomes: one of similar corpus frequency, or one of the "
                                    "`neighbours` nearest whole-word pieces in the teacher's input-embedding space "
                                    "(cosine; TinyBERT's idea without GloVe).", choices=AUGMENT_REPLACE)
    neighbours: int = opt(15, "Nearest neighbours a teacher_neighbours replacement is drawn from.", low=1, high=1000)
    max_examples: int = opt(200_000, "Cap on augmented copies (teacher inference time grows with it).", low=1,
                            high=100_000_000)


@dataclass
class StudentConfig:
    """Which student to build; `options` go to the student's constructor (declared in student_options.py)."""

    type: str = opt("textcnn", "TextCNN (Kim 2014): fast convolutions. BiLSTM/BiGRU (Tang et al. 2019): "
                               "recurrent. Transformer: a small BERT (TinyBERT/TextBrewer sizes).", choices=STUDENTS)
    vocab: str = opt("char", "Characters or words of the train split, or the teacher's word pieces (intermediate "
                             "matches and initialising from the teacher need those).", choices=STUDENT_VOCABS)
    embedding_dim: int = opt(128, "Width of the token embeddings (transformers use their hidden width).", low=1,
                             high=4096)
    embedding_init: str = opt("auto", "Where TextCNN/BiLSTM/BiGRU embeddings start: random, the teacher's input "
                                      "embeddings (vocab teacher), a word-vector file (embedding_file; char/word "
                                      "vocab), or auto (the teacher's on its pieces, else the file, else random). "
                                      "Other widths: see embedding_projection.",
                              choices=EMBEDDING_INITS)
    embedding_file: str | None = None  # word2vec/GloVe text format (word_vectors.py); checked in validate()
    embedding_projection: str = opt("frozen", "Start wider than embedding_dim: projected once (a plain table), or a "
                                               "trained projection of a frozen or trained table.", choices=PROJECTIONS)
    prune_vocab: bool = opt(False, "A transformer on the teacher's pieces keeps only the train split's (vocab_pruning.py).")
    prune_unseen: str = opt("unk", "A pruned-away piece reads [UNK] or its nearest kept piece.", choices=("unk", "nearest"))
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class KDConfig:
    """Prediction-layer KD: alpha*CE(student, y) + (1-alpha)*T^2*KL(teacher/T || student/T)."""

    temperature: float = opt(2.0, "Softens the teacher's distribution; higher T passes more of its 'dark "
                                  "knowledge'. Usually 1–10.", low=0.0, low_open=True, high=1000.0, what="Temperature")
    alpha: float = opt(0.8, "Weight of the hard-label cross-entropy: loss = α·CE(student, labels) + "
                            "(1−α)·T²·KL(teacher‖student). 0 = teacher only, 1 = labels only.", low=0.0, high=1.0,
                       what="alpha (hard-label weight)")
    t2_scaling: bool = opt(True, "Multiply the soft loss by T² so its gradients keep their size as T grows "
                                 "(Hinton et al.).")
    loss: str = opt("kl", "How the student's soft predictions are compared with the teacher's.", choices=KD_LOSSES)
    temperature_schedule: str = opt("constant", "constant; linear / cosine move T to temperature_final; flsw / cwsm "
                                                "(TextBrewer) set it per example, with beta and gamma.",
                                    choices=TEMPERATURE_SCHEDULES)
    temperature_final: float | None = opt(None, "Where a linear or cosine temperature schedule ends.", low=0.0,
                                          low_open=True, high=1000.0)
    schedule_beta: float = opt(1.0, "β of the FLSW/CWSM schedules.", low=0.0, high=1000.0)
    schedule_gamma: float = opt(2.0, "γ of the FLSW/CWSM schedules.", low=0.0, high=1000.0)
    kd_weight: float | None = opt(None, "Weight of the soft-label term; null means 1 − alpha.", low=0.0,
                                  high=1000.0, null="1 - alpha")
    kd_weight_schedule: str = opt("constant", "On the soft-label weight. " + SCHEDULE_FACTOR, choices=WEIGHT_SCHEDULES)
    hard_weight_schedule: str = opt("constant", "On alpha. " + SCHEDULE_FACTOR, choices=WEIGHT_SCHEDULES)


@dataclass
class TuneConfig:
    """Tune KD (tune.py): short trials over temperature x alpha x loss on the dev split pick the settings
    the full run then uses."""

    enabled: bool = opt(False, "Short trial runs on the dev split over the temperatures, alphas and soft losses "
                               "below pick the KD settings; the run then continues with the winner. Every trial "
                               "and the reason for the choice are shown on the run's page.")
    temperatures: list[float] = opt([2.0, 4.0], "Temperatures to try (1 to 10 values).", low=0.0, low_open=True,
                                    high=100.0, length=(1, 10), what="tune.temperatures")
    alphas: list[float] = opt([0.2, 0.5, 0.8], "Hard-label weights α to try (1 to 10 values).", low=0.0, high=1.0,
                              length=(1, 10), what="tune.alphas")
    losses: list[str] = field(default_factory=lambda: ["kl"])  # kd_losses names, checked in _validate_tune
    steps: int = opt(300, "Optimisation steps of each trial.", low=10, high=20_000)
    metric: str | None = opt(None, "The dev metric that scores a trial.", choices=BEST_METRICS,
                             null="train.best_metric")


@dataclass
class TrainConfig:
    """Optimisation and evaluation cadence."""

    epochs: int = opt(3, "Passes over the train split.", low=1, high=1000)
    batch_size: int = opt(64, "Examples per batch.", low=1, high=65536)
    learning_rate: float = opt(1e-3, "1e-3 suits the small students; transformers prefer 1e-4 to 5e-5.", low=0.0,
                               low_open=True, high=10.0)
    optimizer: str = opt("adamw", "The optimiser of every stage.", choices=OPTIMIZERS)
    weight_decay: float = opt(0.0, "L2 penalty (decoupled for AdamW).", low=0.0, high=10.0)
    lr_schedule: str = opt("linear", "After warm-up: keep the rate, or decay it to 0 (linear or cosine).",
                           choices=LR_SCHEDULES)
    warmup_ratio: float = opt(0.0, "Fraction of the steps spent warming the rate up from 0.", low=0.0, high=0.999)
    grad_clip: float | None = opt(1.0, "Max global gradient norm; null turns clipping off.", low=0.0, low_open=True,
                                  high=1e6, null="no clipping")
    grad_accumulation: int = opt(1, "Batches per optimisation step.", low=1, high=1024)
    bucket_by_length: str = opt("auto", "Batch examples of similar length together (bucketing.py): on, off, or "
                                        "auto = on where that cuts the padded cells >= 1.5x (below, the gain is "
                                        "small and batches of one length can cost accuracy).",
                                choices=BUCKETING_MODES)
    checkpoint_every: int = opt(100, "Steps between resumable checkpoints (and every epoch end).", low=1, high=BIG)
    early_stopping_patience: int = opt(0, "Evaluations without a better dev score before stopping; 0 = never.",
                                       low=0, high=1000)
    best_metric: str = opt("accuracy", "The dev metric that picks the best student.", choices=BEST_METRICS)
    amp: str = opt("off", "Mixed precision: off (fp32), bf16 or fp16 on CUDA (bf16 also on CPU).", choices=AMP_MODES)
    log_every: int = opt(10, "Steps between logged training metrics.", low=1, high=10**6)
    eval_every: int = opt(0, "Steps between dev evaluations; 0 = once per epoch.", low=0, high=BIG)
    max_steps: int | None = opt(None, "Stop after this many steps; null: run every epoch.", low=1, high=BIG)
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
    kind: str = opt("distill", "distill: teacher -> student. finetune_teacher: train teacher.path on the labels "
                               "and save it in output_dir as a new teacher checkpoint. lm_distill: causal-LM "
                               "teacher -> causal-LM student, settings in `lm` (distill_core/lm/).", choices=RUN_KINDS)
    seed: int = opt(42, "Seeds initialisation, shuffling and augmentation.", low=0, high=2**31 - 1)
    data: DataConfig = field(default_factory=DataConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    kd: KDConfig = field(default_factory=KDConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)
    # Intermediate-layer matches (a list of {layer_T, layer_S, feature, loss, weight, proj}, or a preset
    # name); see matches.py. Needs student.vocab "teacher" and a student with those features.
    matches: list[dict[str, Any]] | str = field(default_factory=list)
    # Multi-stage runs: a list of StageConfig objects; empty means one stage from train/kd/matches.
    stages: list[dict[str, Any]] = field(default_factory=list)
    lm: LMConfig = field(default_factory=LMConfig)
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
        out = dataclasses.asdict(self)
        if self.kind != "lm_distill":  # other kinds' JSON (and checkpoint fingerprints) stay as they were
            del out["lm"]
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def validate(self) -> None:
        """Check every declared option (bounds, choices), then what one option cannot say alone.

        Paths are checked when the run opens them.
        """
        d, k, t, a = self.data, self.kd, self.train, self.augment
        for section, prefix in ((self, ""), (d, "data."), (self.teacher, "teacher."), (self.student, "student."),
                                (k, "kd."), (t, "train."), (a, "augment."), (self.tune, "tune.")):
            options.check(section, prefix)
        _check(bool(self.name and self.name.strip()), "name", "Give the experiment a name.")
        _check(bool(d.train), "data.train", "Choose a training file.")
        _check(not d.multi_label or bool(d.label_separator), "data.label_separator",
               "A multi-label dataset needs a label_separator (e.g. \",\").")
        _check(bool(self.teacher.path), "teacher.path", "Choose a teacher checkpoint directory.")
        for i, member in enumerate(self.teacher.ensemble):
            where = f"teacher.ensemble.{i}"
            _check(isinstance(member, dict) and set(member) <= {"path", "weight"} and isinstance(member.get("path"), str)
                   and bool(member.get("path")), where, f"{where} must be {{\"path\": \"...\", \"weight\": 1.0}} "
                   f"(got {member!r}).")
            weight = member.get("weight", 1.0)
            _check(isinstance(weight, (int, float)) and not isinstance(weight, bool) and math.isfinite(weight)
                   and weight > 0, f"{where}.weight", f"{where}.weight must be greater than 0 (got {weight!r}).")
        _check(a.p_mask + a.p_replace <= 1.0, "augment.p_replace", "p_mask + p_replace must be at most 1.")
        _check(all(isinstance(n, int) for n in a.ngram_range) and a.ngram_range[0] <= a.ngram_range[1],
               "augment.ngram_range",
               f"augment.ngram_range must be [min, max] with 1 <= min <= max (got {a.ngram_range}).")
        _check(not (a.enabled and d.text_pair_column is not None), "augment.enabled",
               "Augmentation of sentence pairs is not supported; turn augment.enabled off for pair datasets.")
        self._validate_embedding_init()
        if k.temperature_schedule in ("linear", "cosine"):
            _check(k.temperature_final is not None, "kd.temperature_final", f"A {k.temperature_schedule} temperature "
                   f"schedule needs temperature_final greater than 0 (got {k.temperature_final}).")
        self._validate_matches_and_stages()
        if self.kind == "lm_distill":
            validate_lm(self)  # lm/options.py: the lm section, and the stages and matches an LM run takes
        self._validate_tune()

    def _validate_tune(self) -> None:
        u = self.tune  # bounds and lengths are declared; here what one option cannot say alone
        if not u.enabled:
            return
        _check(self.kind == "distill", "tune.enabled", "Tune KD applies to distillation runs only.")
        _check(not self.stages, "tune.enabled", "Tune KD tunes one stage; remove the stages or turn tuning off.")
        _check(isinstance(u.losses, list) and 1 <= len(u.losses) <= 10, "tune.losses", "tune.losses needs 1 to 10 values.")
        for name, values in (("temperatures", u.temperatures), ("alphas", u.alphas), ("losses", u.losses)):
            _check(len(set(map(str, values))) == len(values), f"tune.{name}", f"tune.{name} repeats a value.")
        for loss in u.losses:
            _check(loss in KD_LOSSES(), "tune.losses", f"tune.losses: {loss!r} is not one of: {', '.join(KD_LOSSES())}.")
        trials = len(u.temperatures) * len(u.alphas) * len(u.losses)
        _check(trials <= TUNE_MAX_TRIALS, "tune.temperatures",
               f"The grid has {trials} trials; at most {TUNE_MAX_TRIALS} (fewer temperatures, alphas or losses).")

    def _validate_embedding_init(self) -> None:
        s = self.student
        _check(not s.prune_vocab or (s.type == "transformer" and s.vocab == "teacher"), "student.prune_vocab",
               "Pruning the vocabulary is for a transformer student on the teacher's word pieces (vocab \"teacher\").")
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
        declared = {"epochs": (TrainConfig, "train."), "learning_rate": (TrainConfig, "train."),
                    "alpha": (KDConfig, "kd."), "kd_weight": (KDConfig, "kd."), "temperature": (KDConfig, "kd.")}
        for i, stage in enumerate(self.stage_configs()):
            where = f"stages.{i}." if self.stages else ""
            for name, (section, prefix) in declared.items():  # a stage's values obey the run's declarations
                value = getattr(stage, name)
                message = options.option_of(section, name).problem(value, prefix + name)
                _check(message is None, f"{where or prefix}{name}", message or "")
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
