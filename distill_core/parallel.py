"""Data-parallel training on torch.distributed: one run spread over N processes (ranks) of one host.

    torchrun --standalone --nproc-per-node 2 -m distill_core run config.json
    python -m distill_core run config.json --nproc 2        # starts torchrun itself (launch below)

`setup(config)` (called by distiller.run) joins the process group torchrun describes in the
environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT): gloo on the CPU, NCCL on CUDA, one
device per rank (cuda:LOCAL_RANK). Without WORLD_SIZE > 1 it returns None and nothing here runs.

What a rank does, so that N ranks compute what one process does with the same global batch:
- every rank draws the same permutation (the Trainer's seeded generator) and so the same global
  batches; rank r trains on the r-th contiguous slice of each (`shard`), padded to the global
  batch's width. The data order, and the checkpoint's (epoch, next_batch, permutation), are the
  one-process ones, so a checkpoint resumes at any world size that divides the batch.
- each loss term is a mean over some count (examples, real tokens, token pairs: `COUNTS`); a rank
  scales its term by world * its count / the batch's count, and DDP's gradient average then equals
  the gradient of the one-process mean. Logged values are the same weighted sums, all-reduced.
- dev predictions are made batch by batch exactly as one process makes them, the batches dealt
  out to the ranks and gathered (`predict_labels`), so every rank sees the whole split's metrics.
- rank 0 alone emits events and writes checkpoints and exports; the cancel flag of any rank stops
  all of them at the same step (`any_rank`).
Dropout masks differ from a one-process run's (each rank draws its own, seeded by rank and step).
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from distill_core.errors import ConfigError

ERROR_DIR_ENV = "DISTILLERY_DDP_ERROR_DIR"  # where each failing rank leaves rank-<r>.json for the launcher
TIMEOUT = datetime.timedelta(hours=6)  # a collective waits this long (rank 0 may label a large split meanwhile)

# How each intermediate loss averages (intermediate.py): over examples, real tokens, or real token pairs.
COUNTS = {"hidden_mse": "tokens", "embedding_mse": "tokens", "cos": "tokens", "attention_ce": "tokens",
          "attention_ce_mean": "tokens", "attention_mse": "pairs", "attention_mse_sum": "pairs", "mmd": "pairs",
          "pkd": "examples", "fsp": "examples"}


@dataclass
class Group:
    rank: int
    world: int
    local_rank: int
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0


_group: Group | None = None


def current() -> Group | None:
    return _group


def world_from_env() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def setup(config: Any, device: torch.device) -> Group | None:
    """Join torchrun's process group (once per process); None when this process runs alone."""
    global _group
    world = world_from_env()
    if world <= 1:
        return None
    batch = config.train.batch_size
    if batch % world:
        raise ConfigError(f"train.batch_size={batch} is the global batch and does not divide across {world} "
                          f"processes; use a multiple of {world} (each process then trains on batch/{world}).",
                          field="train.batch_size")
    if _group is None:
        backend = "nccl" if device.type == "cuda" else "gloo"
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if backend == "nccl":
            torch.cuda.set_device(local_rank)
        if not dist.is_initialized():
            dist.init_process_group(backend, timeout=TIMEOUT)
        _group = Group(dist.get_rank(), dist.get_world_size(), local_rank, backend)
    return _group


def rank_device(group: Group | None, device: torch.device) -> torch.device:
    """This rank's device: cuda:LOCAL_RANK on CUDA (torchrun gives each rank its own GPU)."""
    if group is None or device.type != "cuda":
        return device
    return torch.device("cuda", group.local_rank)


def reseed(group: Group | None, seed: int, step: int) -> None:
    """Give ranks other than 0 their own dropout stream (rank 0 keeps the one a checkpoint records)."""
    if group is not None and group.rank:
        torch.manual_seed(hash((seed, step, group.rank)) % 2**63)


def shard(index: torch.Tensor, group: Group) -> tuple[torch.Tensor, bool]:
    """This rank's contiguous slice of a global batch; (one stand-in example, True) when the slice is empty.

    A stand-in keeps the rank in step with DDP's collectives; its loss is scaled by 0.
    """
    local = torch.tensor_split(index, group.world)[group.rank]
    if len(local) == 0:
        return index[:1], True
    return local, False


def _count(kind: str, lengths: torch.Tensor) -> float:
    if kind == "tokens":
        return float(lengths.sum())
    if kind == "pairs":
        return float((lengths.double() ** 2).sum())
    return float(len(lengths))


def term_kinds(match_loss: Any) -> dict[str, str]:
    """Match term key -> what its loss averages over; refuses a loss this module cannot weigh exactly."""
    if match_loss is None:
        return {}
    kinds = {}
    for key, m in zip(match_loss.keys(), match_loss.matches, strict=True):
        if m.loss not in COUNTS:
            raise ConfigError(f"The {m.loss!r} match loss has no data-parallel weighting yet; run on one process.",
                              field="matches")
        kinds[key] = COUNTS[m.loss]
    return kinds


def shares(lengths: torch.Tensor, index: torch.Tensor, local: torch.Tensor, stand_in: bool,
           kinds: dict[str, str]) -> dict[str, float]:
    """Term -> this rank's share count_local / count_global ("" is the per-example share of every other term)."""
    out = {}
    for key, kind in {"": "examples", **kinds}.items():
        out[key] = 0.0 if stand_in else _count(kind, lengths[local]) / max(_count(kind, lengths[index]), 1e-12)
    return out


def sum_across(values: dict[str, float], group: Group, device: torch.device) -> dict[str, float]:
    """Each key summed over the ranks (every rank passes the same keys)."""
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return dict(zip(keys, t.tolist(), strict=True))


def any_rank(flag: bool, group: Group | None, device: torch.device) -> bool:
    """True on every rank when it is true on any (a cancel seen by one rank stops them all at one step)."""
    if group is None:
        return flag
    t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


class Forward(torch.nn.Module):
    """The student and a stage's match projections as one module, so that DDP averages every trained gradient.

    forward(ids, lengths) -> (student logits, match terms, teacher logits of the live pass or None).
    """

    def __init__(self, student: torch.nn.Module, match_loss: torch.nn.Module | None, match_terms: Callable):
        super().__init__()
        self.student, self.match_loss = student, match_loss
        self.__dict__["_match_terms"] = match_terms  # a bound method of the Trainer: not a submodule

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, dict, torch.Tensor | None]:
        if self.match_loss is None:
            return self.student(ids, lengths), {}, None
        out = self.student.features(ids, lengths)
        terms, live = self._match_terms(self.match_loss, out, ids, lengths)
        return out.logits, terms, live


def wrap(module: torch.nn.Module, group: Group | None, device: torch.device) -> torch.nn.Module:
    if group is None:
        return module
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)


def no_sync(module: torch.nn.Module, last: bool) -> contextlib.AbstractContextManager:
    """Skip DDP's gradient all-reduce on every micro-batch of an accumulation group but the last."""
    if last or not hasattr(module, "no_sync"):
        return contextlib.nullcontext()
    return module.no_sync()


def predict_labels(predict: Callable, model: torch.nn.Module, split: Any, device: torch.device, batch_size: int,
                   group: Group) -> torch.Tensor:
    """`predict` (trainer.predict_labels) over the whole split: batches dealt round-robin to ranks, gathered."""
    step = max(1, batch_size * 2)  # predict_labels' own batch: each example is computed as one process does
    starts = list(range(0, len(split), step))[group.rank::group.world]
    mine = [predict(model, _Rows(split, s, min(s + step, len(split))), device, batch_size) for s in starts]
    gathered: list[Any] = [None] * group.world
    dist.all_gather_object(gathered, [t.cpu() for t in mine])
    ordered = [gathered[i % group.world][i // group.world] for i in range(len(range(0, len(split), step)))]
    return torch.cat(ordered)


class _Rows:
    """Rows start..end of an Encoded split, with the interface predict_labels reads."""

    def __init__(self, split: Any, start: int, end: int):
        self.split, self.start, self.end = split, start, end
        self.labels = split.labels[start:end]

    def __len__(self) -> int:
        return self.end - self.start

    def batch(self, index: torch.Tensor, device: torch.device) -> tuple:
        return self.split.batch(index + self.start, device)


@contextlib.contextmanager
def teacher_cache_turn(group: Group | None, cache_dir: str | Path | None,
                       output_dir: str | None) -> Iterator[str | Path | None]:
    """Rank 0 labels the data into the cache under an exclusive file lock; the others wait, then read it.

    Without a cache directory the ranks share a private one (in the output directory, else the temp dir).
    """
    if group is None:
        yield cache_dir
        return
    private = cache_dir is None
    if private:
        base = Path(output_dir) if output_dir else Path(tempfile.gettempdir())
        cache_dir = base / f".ddp-teacher-cache-{os.environ.get('TORCHELASTIC_RUN_ID', 'run')}"
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    lock_path = Path(cache_dir) / f".ddp-{os.environ.get('TORCHELASTIC_RUN_ID', 'run')}.lock"  # this run's ranks only
    with open(lock_path, "a+") as lock:
        if group.is_main:
            fcntl.flock(lock, fcntl.LOCK_EX)
            dist.barrier()  # the others start waiting only once rank 0 holds the lock
        else:
            dist.barrier()
            fcntl.flock(lock, fcntl.LOCK_SH)  # until rank 0 has written every entry
        try:
            yield cache_dir
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    dist.barrier()  # every rank has read the entries
    if group.is_main:
        lock_path.unlink(missing_ok=True)
        if private:
            shutil.rmtree(cache_dir, ignore_errors=True)

def record_failure(exc: BaseException) -> None:
    """Leave this rank's error where the launcher looks (the message names the rank)."""
    folder = os.environ.get(ERROR_DIR_ENV)
    if not folder or _group is None and world_from_env() <= 1:
        return
    rank = int(os.environ.get("RANK", "0"))
    Path(folder).mkdir(parents=True, exist_ok=True)
    (Path(folder) / f"rank-{rank}.json").write_text(json.dumps({
        "rank": rank, "type": type(exc).__name__, "message": str(exc), "time": time.time(),
        "traceback": "".join(traceback.format_exception(exc)[-6:])}))


def first_failure(folder: str | Path) -> dict[str, Any] | None:
    """The earliest rank error the ranks left (the others usually die of its consequences)."""
    errors = [json.loads(p.read_text()) for p in sorted(Path(folder).glob("rank-*.json"))]
    return min(errors, key=lambda e: e["time"]) if errors else None


def torchrun_argv(nproc: int, module_args: list[str]) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
            "-m", *module_args]


def launch(nproc: int, module_args: list[str]) -> int:
    """Run `python -m <module_args>` on `nproc` ranks under torchrun; report the first failing rank."""
    with tempfile.TemporaryDirectory(prefix="distillery-ddp-") as errors:
        env = {**os.environ, ERROR_DIR_ENV: errors}
        code = subprocess.call(torchrun_argv(nproc, module_args), env=env)
        failure = first_failure(errors)
    if code and failure is not None:
        print(f"error: rank {failure['rank']} of {nproc} failed: {failure['type']}: {failure['message']}",
              file=sys.stderr)
    return code


def failure_message(folder: str | Path, nproc: int, code: int) -> str:
    failure = first_failure(folder)
    if failure is None:
        return f"torchrun exited with status {code} and no rank reported an error (killed?)."
    return f"rank {failure['rank']} of {nproc} failed: {failure['type']}: {failure['message']}"



def weighted(terms: dict[str, torch.Tensor], match_keys: Any, share: dict[str, float], hard_w: float, kd_w: float,
             world: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(the loss this rank backpropagates, its share of each logged term: summed over ranks, the batch's value)."""
    loss = share[""] * (hard_w * terms["hard_loss"] + kd_w * terms["kd_loss"])
    for key in match_keys:
        loss = loss + share[key] * terms[key]
    logged = {k: v.detach() * share.get(k, share[""]) for k, v in terms.items()
              if k not in ("loss", "intermediate_loss")}
    return world * loss, logged


def reduced_terms(sums: dict[str, float], match_keys: list[str], hard_w: float, kd_w: float, group: Group,
                  device: torch.device) -> dict[str, float]:
    """The step's logged terms over the whole global batch; the totals recomputed from their parts."""
    total = sum_across(sums, group, device)
    intermediate = sum(total[k] for k in match_keys)
    total["loss"] = hard_w * total["hard_loss"] + kd_w * total["kd_loss"] + intermediate
    if match_keys:
        total["intermediate_loss"] = intermediate
    return total
