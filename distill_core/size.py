"""How big and how fast a model is: parameters, bytes on disk, latency and throughput."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn
from safetensors.torch import save as safetensors_bytes

InputsFn = Callable[[int], dict[str, torch.Tensor]]  # batch size -> keyword inputs on the device


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Total parameters, those in nn.Embedding tables, and the rest (shared tensors count once)."""
    total = sum(p.numel() for p in model.parameters())
    seen: set[int] = set()
    embedding = 0
    for module in model.modules():
        if isinstance(module, nn.Embedding) and id(module.weight) not in seen:
            seen.add(id(module.weight))
            embedding += module.weight.numel()
    return {"parameters": total, "embedding_parameters": embedding, "other_parameters": total - embedding}


def serialized_bytes(model: nn.Module) -> int:
    """Size of the model's safetensors file (tied tensors stored once)."""
    tensors, seen = {}, set()
    for name, tensor in model.state_dict().items():
        key = (tensor.data_ptr(), tensor.shape, tensor.dtype)
        if key not in seen:
            seen.add(key)
            tensors[name] = tensor.detach().cpu().contiguous()
    return len(safetensors_bytes(tensors))


@torch.no_grad()
def latency_ms(model: nn.Module, inputs: dict[str, torch.Tensor], device: torch.device, iterations: int = 5,
               warmup: int = 2) -> dict[str, float]:
    """Wall time of one forward pass in milliseconds: {"p50", "p95"} over `iterations` timed runs."""
    times = []
    for i in range(warmup + iterations):
        _sync(device)
        started = time.perf_counter()
        model(**inputs)
        _sync(device)
        if i >= warmup:
            times.append((time.perf_counter() - started) * 1000.0)
    times.sort()
    p95 = times[min(len(times) - 1, math.ceil(0.95 * len(times)) - 1)]
    return {"p50": statistics.median(times), "p95": p95}


def size_report(model: nn.Module, example_inputs_fn: InputsFn, device: torch.device | str,
                iterations: int = 5, bytes_on_disk: int | None = None) -> dict[str, Any]:
    """Parameters, bytes, p50/p95 latency at batch 1 and 32, and throughput (samples/s at batch 32, from p50).

    `example_inputs_fn(batch_size)` returns the model's keyword inputs for a batch, already on `device`.
    `bytes_on_disk` (a checkpoint's weight files) saves serialising a large model in memory.
    """
    device = torch.device(device)
    was_training = model.training
    model.eval()
    try:
        b1 = latency_ms(model, example_inputs_fn(1), device, iterations * 4)
        b32 = latency_ms(model, example_inputs_fn(32), device, iterations)
    finally:
        model.train(was_training)
    return {
        **count_parameters(model),
        "bytes": bytes_on_disk if bytes_on_disk is not None else serialized_bytes(model),
        "latency_ms_batch_1": round(b1["p50"], 4),
        "latency_ms_batch_1_p95": round(b1["p95"], 4),
        "latency_ms_batch_32": round(b32["p50"], 4),
        "latency_ms_batch_32_p95": round(b32["p95"], 4),
        "throughput_per_s": round(32 * 1000.0 / b32["p50"], 2) if b32["p50"] > 0 else None,
        "device": str(device),
    }


def compare(teacher: dict[str, Any], student: dict[str, Any]) -> dict[str, Any]:
    """Teacher-vs-student ratios: compression (parameters) and speed-up (batch-32 latency)."""
    t32, s32 = teacher["latency_ms_batch_32"], student["latency_ms_batch_32"]
    return {
        "student": student,
        "teacher": teacher,
        "compression": round(teacher["parameters"] / max(1, student["parameters"]), 4),
        "speedup": round(t32 / s32, 4) if s32 > 0 else None,
    }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
