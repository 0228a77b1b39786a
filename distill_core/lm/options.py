"""The `lm` section of an ExperimentConfig: what a causal-LM distillation run needs beyond the rest.

No torch here: the web form and the config validation import it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from distill_core.errors import ConfigError

LM_MODES = ("offline", "online", "on_policy")
LM_LOSSES = ("forward_kl", "reverse_kl", "jsd", "tv")
LM_DATA_FORMATS = ("auto", "prompt_response", "messages", "text")
LM_STUDENT_SOURCES = ("derived", "preset", "checkpoint")
LAYER_PICKS = ("uniform", "top", "bottom")
# What each mode costs, shown beside the choice on the form.
MODE_COSTS = {
    "offline": "the teacher runs once per split; its top-k logits are cached on disk and reused by every epoch "
               "and every experiment with the same teacher and data",
    "online": "the teacher runs on every training batch (full vocabulary, no cache)",
    "on_policy": "like online, and a fraction lambda of batches first samples continuations from the student",
}


@dataclass
class LMConfig:
    """Causal-LM distillation settings (run kind `lm_distill`); temperature and weights of the token loss."""

    mode: str = "offline"  # offline (cached teacher top-k) | online (teacher every batch) | on_policy (GKD)
    loss: str = "forward_kl"  # forward_kl | reverse_kl | jsd | tv (losses.py)
    beta: float = 0.5  # generalised JSD mixture weight: 0 = forward KL, 1 = reverse KL
    temperature: float = 1.0
    distill_weight: float = 1.0
    sft_weight: float = 0.0  # cross-entropy of the student on the response tokens
    top_k: int = 20  # offline: teacher logits kept per response token (renormalised over these)
    lambda_on_policy: float = 0.5  # on_policy: fraction of batches whose responses the student samples
    max_new_tokens: int = 32  # on_policy: length of a sampled continuation
    sample_temperature: float = 1.0  # on_policy: sampling temperature of the student
    # Data: JSONL rows {prompt, response} | {messages: [{role, content}, ...]} | {text}; or a .txt file.
    data_format: str = "auto"
    prompt_key: str = "prompt"
    response_key: str = "response"
    messages_key: str = "messages"
    text_key: str = "text"
    # Student: derived (teacher's layers picked and copied) | preset (teacher's family, fresh weights) |
    # checkpoint (student_path, a directory or hub:org/name).
    student_source: str = "derived"
    student_path: str = ""
    layers: int = 2
    layer_pick: str = "uniform"  # derived: uniform | top | bottom
    hidden_size: int | None = None  # preset: None keeps the teacher's width
    num_heads: int | None = None
    intermediate_size: int | None = None
    # Test-time samples: these prompts (else the first `samples` test prompts), greedy, side by side.
    sample_prompts: list[str] = field(default_factory=list)
    samples: int = 4
    sample_max_new_tokens: int = 24

    def validate(self) -> None:
        _choice(self.mode, LM_MODES, "lm.mode")
        _choice(self.loss, LM_LOSSES, "lm.loss")
        _choice(self.data_format, LM_DATA_FORMATS, "lm.data_format")
        _choice(self.student_source, LM_STUDENT_SOURCES, "lm.student_source")
        _choice(self.layer_pick, LAYER_PICKS, "lm.layer_pick")
        _check(math.isfinite(self.beta) and 0.0 <= self.beta <= 1.0, "lm.beta",
               f"beta is a mixture weight between 0 and 1 (got {self.beta}).")
        _check(math.isfinite(self.temperature) and self.temperature > 0, "lm.temperature",
               f"Temperature must be greater than 0 (got {self.temperature}).")
        for name in ("distill_weight", "sft_weight"):
            value = getattr(self, name)
            _check(math.isfinite(value) and value >= 0, f"lm.{name}", f"{name} must be 0 or more (got {value}).")
        _check(self.distill_weight + self.sft_weight > 0, "lm.distill_weight",
               "distill_weight and sft_weight are both 0: nothing would be learnt.")
        _check(1 <= self.top_k <= 4096, "lm.top_k", "top_k must be between 1 and 4096.")
        _check(math.isfinite(self.lambda_on_policy) and 0.0 <= self.lambda_on_policy <= 1.0, "lm.lambda_on_policy",
               f"lambda_on_policy is a fraction between 0 and 1 (got {self.lambda_on_policy}).")
        _check(1 <= self.max_new_tokens <= 4096, "lm.max_new_tokens", "max_new_tokens must be between 1 and 4096.")
        _check(math.isfinite(self.sample_temperature) and self.sample_temperature > 0, "lm.sample_temperature",
               "sample_temperature must be greater than 0.")
        _check(1 <= self.layers <= 512, "lm.layers", "layers must be between 1 and 512.")
        for name in ("hidden_size", "num_heads", "intermediate_size"):
            value = getattr(self, name)
            _check(value is None or value >= 1, f"lm.{name}", f"{name} must be at least 1, or empty for the teacher's.")
        if self.hidden_size and self.num_heads:
            _check(self.hidden_size % self.num_heads == 0, "lm.num_heads",
                   f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}.")
        _check(self.student_source != "checkpoint" or bool(self.student_path.strip()), "lm.student_path",
               "A checkpoint student needs student_path (a directory or hub:org/name).")
        _check(0 <= self.samples <= 64, "lm.samples", "samples must be between 0 and 64.")
        _check(1 <= self.sample_max_new_tokens <= 1024, "lm.sample_max_new_tokens",
               "sample_max_new_tokens must be between 1 and 1024.")
        _check(all(isinstance(p, str) and p for p in self.sample_prompts), "lm.sample_prompts",
               "sample_prompts must be non-empty strings.")


def _check(ok: bool, field_name: str, message: str) -> None:
    if not ok:
        raise ConfigError(message, field=field_name)


def _choice(value: str, allowed: tuple[str, ...], field_name: str) -> None:
    if value not in allowed:
        raise ConfigError(f"{field_name}={value!r} is not one of: {', '.join(allowed)}.", field=field_name)
