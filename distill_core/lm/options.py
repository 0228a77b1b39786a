"""The `lm` section of an ExperimentConfig: what a causal-LM distillation run needs beyond the rest.

Each option is declared once with opt() (distill_core/options.py): the web form's inputs, the API
schema and the docs' option table are generated from these declarations. `validate` adds what one
option cannot say alone. No torch here: the web form and the config validation import it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from distill_core import options
from distill_core.errors import ConfigError
from distill_core.options import opt, registry_names

LM_MODES = ("offline", "online", "on_policy")
LM_LOSSES = registry_names("distill_core.lm.losses", "token_losses")
LM_DATA_FORMATS = ("auto", "prompt_response", "messages", "text")
LM_STUDENT_SOURCES = ("derived", "preset", "checkpoint")
LAYER_PICKS = ("uniform", "top", "bottom")
# What each mode costs, shown in the mode's help (so beside the choice on the form).
MODE_COSTS = {
    "offline": "the teacher runs once per split; its top-k logits are cached on disk and reused by every epoch "
               "and every experiment with the same teacher and data",
    "online": "the teacher runs on every training batch (full vocabulary, no cache)",
    "on_policy": "like online, and a fraction lambda of batches first samples continuations from the student",
}
WEIGHT = {"low": 0.0, "high": 1000.0}
UNIT = {"low": 0.0, "high": 1.0}


@dataclass
class LMConfig:
    """Causal-LM distillation settings (run kind `lm_distill`): the teacher's mode, the token loss, the student."""

    mode: str = opt("offline", "Where the teacher's targets come from. " + " · ".join(
        f"{m}: {cost}" for m, cost in MODE_COSTS.items()) + ". Intermediate matches run the teacher on every "
        "batch in every mode (its hidden states are not cached).", choices=LM_MODES)
    loss: str = opt("forward_kl", "Token-level divergence between the teacher's and the student's next-token "
                                  "distributions (distill_core/lm/losses.py).", choices=LM_LOSSES)
    beta: float = opt(0.5, "Generalised JSD mixture weight: 0 = forward KL, 1 = reverse KL.", **UNIT)
    temperature: float = opt(1.0, "Softens both distributions; kd.temperature_schedule (constant, linear or "
                                  "cosine) moves it to kd.temperature_final over training.", low=0.0,
                             low_open=True, high=1000.0)
    distill_weight: float = opt(1.0, "Weight of the token loss, times kd.kd_weight_schedule's factor.", **WEIGHT)
    sft_weight: float = opt(0.0, "Weight of the cross-entropy of the student on the response tokens, times "
                                 "kd.hard_weight_schedule's factor.", **WEIGHT)
    top_k: int = opt(20, "Offline: teacher logits kept per response token (renormalised over these).", low=1,
                     high=4096)
    lambda_on_policy: float = opt(0.5, "On-policy: fraction of batches whose responses the student samples.", **UNIT)
    max_new_tokens: int = opt(32, "On-policy: tokens sampled per continuation.", low=1, high=4096)
    sample_temperature: float = opt(1.0, "On-policy: the student's sampling temperature.", low=0.0, low_open=True,
                                    high=100.0)
    data_format: str = opt("auto", "JSONL rows {prompt, response}, {messages: [{role, content}, ...]} rendered with "
                                   "the tokenizer's chat template, or {text}; auto: by the keys of each row "
                                   "(a .txt file is plain text, one document per line).", choices=LM_DATA_FORMATS)
    prompt_key: str = opt("prompt", "The prompt's key in a prompt/response row.")
    response_key: str = opt("response", "The response's key in a prompt/response row.")
    messages_key: str = opt("messages", "The conversation's key in a chat row.")
    text_key: str = opt("text", "The document's key in a plain-text row.")
    student_source: str = opt("derived", "derived: the teacher's config with `layers` of its blocks picked by "
                                         "layer_pick and copied; preset: the teacher's family with the chosen depth "
                                         "and width, fresh weights; checkpoint: student_path, which must share the "
                                         "teacher's tokenizer.", choices=LM_STUDENT_SOURCES)
    # A directory or hub:org/name; the web form fills it from a registered checkpoint of the team.
    student_path: str = ""
    layers: int = opt(2, "Decoder layers of a derived or preset student.", low=1, high=512)
    layer_pick: str = opt("uniform", "Derived: which teacher blocks are copied (uniform, the top or the bottom ones).",
                          choices=LAYER_PICKS)
    hidden_size: int | None = opt(None, "Preset: hidden size; null keeps the teacher's.", low=1, high=65536,
                                  null="the teacher's")
    num_heads: int | None = opt(None, "Preset: attention heads, a divisor of the hidden size; null keeps the "
                                      "teacher's.", low=1, high=512, null="the teacher's")
    intermediate_size: int | None = opt(None, "Preset: feed-forward size; null keeps the teacher's.", low=1,
                                        high=262144, null="the teacher's")
    # Test-time samples: these prompts (else the first `samples` test prompts), greedy, side by side.
    sample_prompts: list[str] = field(default_factory=list)
    samples: int = opt(4, "Test prompts sampled side by side when no sample prompts are given.", low=0, high=64)
    sample_max_new_tokens: int = opt(24, "Length of each side-by-side sample, in tokens.", low=1, high=1024)

    def validate(self) -> None:
        """The declared bounds and choices, then what one option cannot say alone."""
        options.check(self, "lm.")
        _check(self.distill_weight + self.sft_weight > 0, "lm.distill_weight",
               "distill_weight and sft_weight are both 0: nothing would be learnt.")
        if self.hidden_size and self.num_heads:
            _check(self.hidden_size % self.num_heads == 0, "lm.num_heads",
                   f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}.")
        _check(isinstance(self.student_path, str), "lm.student_path", "student_path must be a string.")
        _check(self.student_source != "checkpoint" or bool(self.student_path.strip()), "lm.student_path",
               "A checkpoint student needs student_path (a directory or hub:org/name).")
        _check(isinstance(self.sample_prompts, list) and len(self.sample_prompts) <= 64
               and all(isinstance(p, str) and p for p in self.sample_prompts), "lm.sample_prompts",
               "sample_prompts must be a list of at most 64 non-empty strings.")


def _check(ok: bool, field_name: str, message: str) -> None:
    if not ok:
        raise ConfigError(message, field=field_name)


def validate_run(config) -> None:
    """The `lm` section, then what the rest of an lm_distill config may hold (config.validate calls it)."""
    config.lm.validate()
    # flsw / cwsm set a temperature per example from class logits; a token loss takes one temperature.
    _check(config.kd.temperature_schedule in ("constant", "linear", "cosine"), "kd.temperature_schedule",
           f"A language-model run takes a constant, linear or cosine temperature schedule (got "
           f"{config.kd.temperature_schedule!r}, a per-example schedule of classifier logits).")
    if config.matches:
        from distill_core.lm.matches import refuse_attention  # imports torch: only when there are matches

        refuse_attention(config.matches)
    if config.stages:  # their kd_weight, alpha and temperature map onto the LM loss (lm/stages.py)
        from distill_core.lm.stages import validate_stages

        validate_stages(config)
