"""Teachers: local Hugging Face sequence-classification checkpoints, inspected, loaded and run once."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from distill_core.checkpoint_limits import bounded_build, check_config_file
from distill_core.errors import CheckpointError
from distill_core.teacher_training import train_teacher
from distill_core.untrusted import UntrustedInput, check_tree, loads

__all__ = ["inspect_checkpoint", "load_teacher", "teacher_logits", "label_order", "tokenize", "train_teacher",
           "saved_dtype", "compute_dtype"]

log = logging.getLogger(__name__)

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt")
FIELD = "teacher.path"
# safetensors' dtype codes for floating tensors (the header names every tensor's dtype).
SAFETENSORS_DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16"}
HALF = ("float16", "bfloat16")


def inspect_checkpoint(path: str | Path, build: bool = True) -> dict[str, Any]:
    """Describe a checkpoint directory without loading its weights.

    Returns model_type, architectures, num_labels, labels (from id2label), num_layers, hidden_size,
    num_heads, vocab_size, max_position_embeddings, parameters, size_bytes (weight files), dtype (the
    saved one) and compute_dtype ({"cpu", "cuda"}: what load_teacher runs it in there). `build` counts
    the parameters by building the model on the meta device (bounded, up to seconds for the largest
    configs allowed); without it `parameters` is None and nothing is built.
    Raises CheckpointError saying what is missing or wrong.
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification
    from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES

    path = Path(path)
    if not path.is_dir():
        # Only a relative path gets the working directory as a hint: a server must not reveal it otherwise.
        hint = "" if path.is_absolute() else f" (relative paths start at {Path.cwd()})"
        raise CheckpointError(f"Teacher checkpoint directory {path} does not exist{hint}.", field=FIELD)
    if not (path / "config.json").is_file():
        raise CheckpointError(f"{path} has no config.json; is it a directory written by save_pretrained()?", field=FIELD)
    check_config_file(path / "config.json", FIELD)  # bounded before transformers reads it or builds a model
    try:
        config = AutoConfig.from_pretrained(path)
    except Exception as exc:  # bad JSON, unknown model_type, ...: transformers raises many kinds
        raise CheckpointError(f"Cannot read {path / 'config.json'}: {_first_line(exc)}", field=FIELD) from exc
    if config.model_type not in MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES:
        raise CheckpointError(f"{path} holds a {config.model_type!r} model, which has no sequence-classification "
                              f"head in transformers; choose a text-classification checkpoint.", field=FIELD)
    weights = [path / name for name in WEIGHT_FILES if (path / name).is_file()]
    if not weights:
        raise CheckpointError(f"{path} has no weights ({' or '.join(WEIGHT_FILES[::2])}).", field=FIELD)
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise CheckpointError(f"{path} has no tokenizer files ({', '.join(TOKENIZER_FILES)}); save the tokenizer "
                              f"with tokenizer.save_pretrained() into the same directory.", field=FIELD)
    parameters = None
    if build:
        try:
            with torch.device("meta"), bounded_build():  # shapes only: nothing is allocated or read
                model = AutoModelForSequenceClassification.from_config(config)
            parameters = int(sum(p.numel() for p in model.parameters()))
        except Exception as exc:
            raise CheckpointError(f"Cannot build the model described by {path / 'config.json'}: {_first_line(exc)}",
                                  field=FIELD) from exc
    architectures = [str(a) for a in getattr(config, "architectures", None) or []]
    labels = [str(config.id2label[i]) for i in sorted(config.id2label)]
    try:  # they are stored (Postgres refuses NUL and unpaired surrogates) and shown
        check_tree({"id2label": labels, "architectures": architectures})
    except UntrustedInput as exc:
        raise CheckpointError(f"{path / 'config.json'}: {exc.message} Fix the label names and save it again.",
                              field=FIELD) from None
    dtype = saved_dtype(path, config)
    return {
        "model_type": config.model_type,
        "architectures": architectures,
        "num_labels": int(config.num_labels),
        "labels": labels,
        "num_layers": _first_attr(config, "num_hidden_layers", "n_layer", "num_layers"),
        "hidden_size": _first_attr(config, "hidden_size", "n_embd", "d_model", "dim"),
        "num_heads": _first_attr(config, "num_attention_heads", "n_head", "num_heads"),
        "vocab_size": _first_attr(config, "vocab_size"),
        "max_position_embeddings": _first_attr(config, "max_position_embeddings", "n_positions"),
        "parameters": parameters,
        "size_bytes": sum(_weights_size(w) for w in weights),
        "dtype": dtype,
        "compute_dtype": {device: compute_dtype(dtype, device) for device in ("cpu", "cuda")},
    }


def saved_dtype(path: str | Path, config: Any = None) -> str:
    """The floating dtype a checkpoint's weights are stored in ("float32", "float16", "bfloat16", ...).

    Read from the safetensors header (a few KB, no weights) when there is one, else from config.json's
    dtype/torch_dtype entry; "float32" when neither says.
    """
    path = Path(path)
    header = _safetensors_header(path)
    if header:
        counts: dict[str, int] = {}
        for name, entry in header.items():
            dtype = SAFETENSORS_DTYPES.get(entry.get("dtype")) if name != "__metadata__" else None
            if dtype is not None:
                size = 1
                for dim in entry.get("shape", []):
                    size *= dim
                counts[dtype] = counts.get(dtype, 0) + size
        if counts:
            return max(counts, key=counts.get)  # by element count: a few float32 buffers do not decide it
    if config is None:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(path)
    declared = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    return str(declared).removeprefix("torch.") if declared else "float32"


def compute_dtype(saved: str, device: torch.device | str, precision: str = "auto") -> str:
    """The dtype the teacher's forward passes run in: the one place that decides it.

    `precision` "auto" (exact to the save): on the CPU float32 whatever was saved (float16 matrix
    products on the CPU are ~4x slower than float32, and both halves are less exact); on CUDA a
    half-precision checkpoint runs in its own precision (tensor cores; float32 would double memory for
    no accuracy it ever had), bfloat16 falling back to float16 on GPUs without it; a float32 checkpoint
    stays float32. "float32" always float32. "bfloat16" (a run's opt-in, `teacher.precision`): bfloat16
    where the hardware multiplies it natively (CUDA with bf16, CPUs with avx512_bf16 or AMX: 1.6-3.5x
    the float32 teacher pass here, logits rounded by ~1e-2), else float32.
    """
    device = torch.device(device)
    if precision == "float32":
        return "float32"
    if precision == "bfloat16":
        native = torch.cuda.is_bf16_supported() if device.type == "cuda" else cpu_has_native_bf16()
        return "bfloat16" if native else "float32"
    if device.type != "cuda" or saved not in HALF:
        return "float32"
    if saved == "bfloat16" and torch.cuda.is_available() and not torch.cuda.is_bf16_supported():
        return "float16"
    return saved


def cpu_has_native_bf16() -> bool:
    """Whether this CPU has bfloat16 dot-product instructions (x86 avx512_bf16 / AMX, Arm bf16)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith(("flags", "Features")):
                    return bool({"avx512_bf16", "amx_bf16", "bf16"} & set(line.split(":", 1)[1].split()))
    except OSError:
        pass
    return False


def load_teacher(path: str | Path, device: torch.device | str = "cpu", labels: list[str] | None = None,
                 attn_implementation: str | None = None, precision: str = "auto") -> tuple[torch.nn.Module, Any]:
    """Load (model in eval mode on `device`, tokenizer); check its label count against `labels`.

    `attn_implementation` None is transformers' default (SDPA where the architecture has it, 10-20 % faster
    on the CPU here), which returns no attention maps: pass "eager" to get them (the distiller switches a
    loaded teacher with set_attn_implementation when a match compares attentions). `precision`:
    `teacher.precision` (compute_dtype).
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    info = inspect_checkpoint(path)
    if labels is not None and info["num_labels"] != len(labels):
        raise CheckpointError(f"The teacher has {info['num_labels']} labels but the dataset has {len(labels)}; "
                              f"choose a teacher fine-tuned on this label set.", field=FIELD)
    device = torch.device(device)
    dtype = compute_dtype(info["dtype"], device, precision)
    if precision == "bfloat16" and dtype != "bfloat16":
        log.warning("teacher.precision bfloat16: this %s has no native bfloat16, computing in %s", device.type, dtype)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        # An explicit dtype: transformers would otherwise keep the saved one (float16 on a CPU: ~4x slower).
        model = AutoModelForSequenceClassification.from_pretrained(path, attn_implementation=attn_implementation,
                                                                   dtype=getattr(torch, dtype))
    except Exception as exc:
        raise CheckpointError(f"Cannot load the teacher from {path}: {_first_line(exc)}", field=FIELD) from exc
    model.to(device).eval()
    log.info("Loaded teacher %s (%s, %d labels): saved in %s, computing in %s on %s", path, info["model_type"],
             info["num_labels"], info["dtype"], dtype, device.type)
    return model, tokenizer


def tokenize(tokenizer: Any, texts: list[str], pairs: list[str] | None, max_length: int) -> dict[str, torch.Tensor]:
    """Teacher inputs for a batch: padded to its longest example, truncated to `max_length`."""
    return dict(tokenizer(texts, pairs, padding=True, truncation=True, max_length=max_length, return_tensors="pt"))


@torch.no_grad()
def teacher_logits(model: torch.nn.Module, tokenizer: Any, texts: list[str], pairs: list[str] | None,
                   max_length: int, batch_size: int = 64, device: torch.device | str = "cpu",
                   on_batch: Callable[[], None] | None = None,
                   progress: Callable[[int], None] | None = None) -> torch.Tensor:
    """Run the teacher over all examples once: logits (N, C) float32 on the CPU, in input order.

    Examples are batched shortest first, so a batch pads to lengths close to its own (less work than
    input order, where one long title pads its whole batch); the rows are put back in input order.
    `on_batch()` is called before every batch (the distiller raises RunCancelled from it), `progress(n)`
    after each batch of n examples.
    """
    model.eval()
    n = len(texts)
    if n == 0:
        return torch.zeros(0, model.config.num_labels)
    order = sorted(range(n), key=lambda i: len(texts[i]) + (len(pairs[i]) if pairs is not None else 0))
    out = []
    for start in range(0, n, batch_size):
        if on_batch is not None:
            on_batch()
        index = order[start: start + batch_size]
        batch = tokenize(tokenizer, [texts[i] for i in index],
                         [pairs[i] for i in index] if pairs is not None else None, max_length)
        batch = {k: v.to(device) for k, v in batch.items()}
        out.append(model(**batch).logits.float().cpu())  # (b, C)
        if progress is not None:
            progress(len(index))
    logits = torch.empty(n, out[0].size(1))
    logits[torch.tensor(order)] = torch.cat(out)  # back to input order
    return logits


def label_order(teacher_labels: list[str], dataset_labels: list[str]) -> list[int] | None:
    """Teacher column for each dataset label when both name the same classes in another order, else None.

    Generic names (LABEL_0, ...) carry no meaning, so they are taken in index order.
    """
    if teacher_labels == dataset_labels or any(re.fullmatch(r"LABEL_\d+", t) for t in teacher_labels):
        return None
    if sorted(teacher_labels) != sorted(dataset_labels):
        log.warning("Teacher labels %s differ from the dataset's %s; matching them by index", teacher_labels,
                    dataset_labels)
        return None
    return [teacher_labels.index(label) for label in dataset_labels]


def _safetensors_header(path: Path) -> dict[str, Any] | None:
    """The JSON header of the checkpoint's (first) safetensors file, or None without one."""
    file = path / "model.safetensors"
    if not file.is_file() and (path / "model.safetensors.index.json").is_file():
        try:
            file = _shards(path / "model.safetensors.index.json")[0]  # each shard checked to lie inside `path`
        except CheckpointError:
            return None
    if not file.is_file():
        return None
    try:
        with open(file, "rb") as fh:
            length = int.from_bytes(fh.read(8), "little")  # u64 header size, then the header JSON
            if not 0 < length < 100_000_000:
                return None
            header = loads(fh.read(length))
    except (OSError, ValueError):  # UntrustedInput is a ValueError
        return None
    if not isinstance(header, dict) or not all(isinstance(v, dict) for v in header.values()):
        return None  # not a safetensors header: the dtype then comes from config.json
    return header


def _first_attr(config: Any, *names: str) -> int | None:
    for name in names:
        value = getattr(config, name, None)
        if isinstance(value, int):
            return value
    return None


def _weights_size(path: Path) -> int:
    """Bytes of a weight file, or of every shard a `*.index.json` names (each inside the directory)."""
    if not path.name.endswith(".index.json"):
        return path.stat().st_size
    return sum(shard.stat().st_size for shard in _shards(path))


def _shards(index: Path) -> list[Path]:
    """Return the shard files of a sharded checkpoint's index, each resolved inside its directory.

    A weight_map is data from whoever wrote the checkpoint: an entry such as "/etc/shadow" or
    "../../etc/passwd" is refused before anything is looked up there, so the reported size can
    never describe a file outside the checkpoint.
    """
    directory = index.parent.resolve()
    shards = []
    for name in sorted(set(_weight_map(index).values())):
        try:
            shard = (directory / name).resolve() if "\x00" not in name else directory
        except (OSError, RuntimeError):  # a symlink loop, a name too long
            shard = directory
        if shard == directory or not shard.is_relative_to(directory):
            raise CheckpointError(f"{index.name} names the shard {name[:100]!r}, which is not a file inside the "
                                  "checkpoint directory; shards must sit beside the index.", field=FIELD)
        if not shard.is_file():
            raise CheckpointError(f"{index.name} names the shard {name[:100]!r}, which is missing from the "
                                  "checkpoint directory.", field=FIELD)
        shards.append(shard)
    return shards


def _weight_map(index: Path) -> dict[str, str]:
    """The {tensor: shard file} map of a sharded checkpoint's index file; CheckpointError when malformed."""
    try:
        data = loads(index.read_bytes())
    except UntrustedInput as exc:
        raise CheckpointError(f"{index.name} cannot be read: {exc.message} Re-save the checkpoint with "
                              "save_pretrained().", field=FIELD) from None
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not (isinstance(weight_map, dict) and weight_map
            and all(isinstance(shard, str) and shard for shard in weight_map.values())):
        raise CheckpointError(f'{index.name} has no "weight_map" object naming the shard file of each tensor. '
                              "Re-save the checkpoint with save_pretrained().", field=FIELD)
    return weight_map


def _first_line(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
