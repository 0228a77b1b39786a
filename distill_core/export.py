"""Export a trained student (safetensors + student.json + vocabulary) and classify texts with it."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from distill_core.errors import CheckpointError
from distill_core.storage import writing
from distill_core.students import build_student, student_options
from distill_core.vocab import Encoder, TeacherPieces, Vocab
from distill_core.vocab_pruning import pruned_rows, pruned_shape

log = logging.getLogger(__name__)

WEIGHTS, MANIFEST, VOCAB = "model.safetensors", "student.json", "vocab.json"


def save_student(model: torch.nn.Module, encoder: Encoder, *, student_type: str, embedding_dim: int,
                 labels: list[str], max_length: int, output_dir: str | Path,
                 config: dict[str, Any] | None = None, multi_label: bool = False) -> Path:
    """Write the student into `output_dir`; returns the directory.

    Files: model.safetensors (weights), student.json (what to build: type, options, labels, ...),
    vocab.json (char/word vocabulary) or the teacher's tokenizer files, and config.json (the run's config).
    """
    from safetensors.torch import save_file

    out = Path(output_dir)
    with writing(out, "student export"):
        out.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(out / WEIGHTS))
        if isinstance(encoder, Vocab):
            encoder.save(out / VOCAB)
        else:
            encoder.tokenizer.save_pretrained(out)
        manifest = {
            "format": 1,
            "student_type": student_type,
            "embedding_dim": embedding_dim,
            "options": student_options(model),
            "vocab": encoder.kind,
            "vocab_size": encoder.vocab_size,
            "labels": list(labels),
            "max_length": max_length,
            "multi_label": multi_label,
            "pruned_vocab": pruned_rows(model),  # rows kept of vocab_size (vocab_pruning.py); None: all
        }
        (out / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
        if config is not None:
            (out / "config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False), encoding="utf-8")
    log.info("Exported the student to %s", out)
    return out


@dataclass
class Predictor:
    """A loaded export: `predict(texts)` returns the label and class probabilities of each text."""

    model: torch.nn.Module
    encoder: Encoder
    labels: list[str]
    max_length: int
    multi_label: bool = False

    @torch.no_grad()
    def probabilities(self, texts: list[str], pairs: list[str] | None = None) -> torch.Tensor:
        """Softmax probabilities (N, C); per-class sigmoids for a multi-label student."""
        ids, lengths = self.encoder.encode(list(texts), pairs, self.max_length)  # (N, L), (N,)
        logits = self.model(ids, lengths).float()  # (N, C)
        return torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, dim=-1)

    def predict(self, texts: list[str], pairs: list[str] | None = None) -> list[dict[str, Any]]:
        probs = self.probabilities(texts, pairs)
        rows = []
        for text, row in zip(texts, probs, strict=True):
            out = {"text": text, "label": self.labels[int(row.argmax())],
                   "probabilities": {label: round(float(p), 6) for label, p in zip(self.labels, row, strict=True)}}
            if self.multi_label:
                out["labels"] = [label for label, p in zip(self.labels, row, strict=True) if p > 0.5]
            rows.append(out)
        return rows


def load_student(export_dir: str | Path) -> Predictor:
    """Load an export written by `save_student` (CPU, eval mode)."""
    from safetensors.torch import load_file

    out = Path(export_dir)
    if not (out / MANIFEST).is_file() or not (out / WEIGHTS).is_file():
        raise CheckpointError(f"{out} is not a student export: it needs {MANIFEST} and {WEIGHTS}.")
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    if manifest["vocab"] == "teacher":
        from transformers import AutoTokenizer

        encoder: Encoder = TeacherPieces(AutoTokenizer.from_pretrained(out))
    else:
        encoder = Vocab.from_json(json.loads((out / VOCAB).read_text(encoding="utf-8")))
    model = build_student(manifest["student_type"], manifest["vocab_size"], len(manifest["labels"]),
                          manifest["embedding_dim"], manifest["options"])
    if manifest.get("pruned_vocab"):
        pruned_shape(model, int(manifest["pruned_vocab"]))
    model.load_state_dict(load_file(str(out / WEIGHTS)))
    model.eval()
    return Predictor(model, encoder, list(manifest["labels"]), int(manifest["max_length"]),
                     bool(manifest.get("multi_label", False)))


def predict(export_dir: str | Path, texts: list[str], pairs: list[str] | None = None) -> list[dict[str, Any]]:
    """Classify `texts` with the student exported in `export_dir`."""
    return load_student(export_dir).predict(texts, pairs)
