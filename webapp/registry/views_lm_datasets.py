"""A language-model dataset's page: rows per split, a preview of rendered prompts and length histograms.

Every read is bounded: the preview and the token counts read only the head of the train file
(distill_core.lm.rows.head), the whole-file word histograms were computed at upload, and a chosen
checkpoint's tokenizer is read within tokenizer_files' bounds (and cached).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.http import Http404
from django.shortcuts import render

from distill_core.errors import CheckpointError, DatasetError
from distill_core.lm import rows as lm_rows
from webapp.accounts.access import get_owned, owned
from webapp.registry import datasets, lm_datasets, ownership
from webapp.registry.models import Checkpoint, Dataset
from webapp.registry.tokenizers import tokenizer_of

PREVIEW_ROWS = 20
TOKEN_ROWS = 500  # rows whose token lengths a page counts with a chosen tokenizer


def lm_dataset_detail(request, dataset: Dataset):
    stats = dataset.stats if isinstance(dataset.stats, dict) else {}
    splits = [{"name": name, "rows": (stats.get(name) or {}).get("rows"), "path": path,
               "formats": (stats.get(name) or {}).get("formats") or {}}
              for name, path in datasets.split_paths(dataset).items()]
    checkpoints = (owned(request.user, Checkpoint).filter(status=Checkpoint.Status.READY, hub_id="")
                   .order_by("name"))
    checkpoint, tokenizer, checkpoint_error = _chosen(request, checkpoint_queryset=checkpoints)
    options = lm_datasets.options_of(dataset)
    preview, preview_error, lengths = [], None, _word_lengths(stats)
    try:
        rows = lm_rows.head(dataset.train_path, options, TOKEN_ROWS if tokenizer else PREVIEW_ROWS)
        shown = [_rendered(row, tokenizer) for row in rows]
        preview = shown[:PREVIEW_ROWS]
        if tokenizer is not None:
            lengths = {"unit": "tokens", "rows": len(shown), "checkpoint": checkpoint.name,
                       "prompt": lm_rows.histogram([r["prompt_tokens"] for r in shown]),
                       "response": lm_rows.histogram([r["response_tokens"] for r in shown])}
    except DatasetError as exc:
        preview_error = exc.message
    return render(request, "datasets/lm_detail.html", {
        "dataset": dataset, "splits": splits, "columns": options, "checkpoints": checkpoints,
        "checkpoint": checkpoint, "checkpoint_error": checkpoint_error, "preview": preview,
        "preview_error": preview_error, "lengths": lengths, "token_rows": TOKEN_ROWS,
        "experiments": dataset.experiments.select_related("teacher", "owner").defer("config")[:20],
        "nav": "datasets"})


def _chosen(request, checkpoint_queryset) -> tuple[Checkpoint | None, Any, str | None]:
    """(checkpoint, its tokenizer, why it cannot be used) for the GET parameter `checkpoint` (404 if not the user's)."""
    raw = request.GET.get("checkpoint", "")
    if not raw:
        return None, None, None
    if not raw.isdigit():
        raise Http404("No checkpoint matches the given query.")
    checkpoint = get_owned(request.user, checkpoint_queryset, pk=int(raw))
    path = Path(checkpoint.path).resolve()
    if not ownership.may_use(checkpoint.team, path):
        return checkpoint, None, ownership.not_yours_message(checkpoint)
    try:
        return checkpoint, tokenizer_of(path, "checkpoint"), None
    except CheckpointError as exc:
        return checkpoint, None, exc.message


def _rendered(row: Any, tokenizer: Any) -> dict[str, Any]:
    """A row as the run sees it: with a tokenizer, chat rows through its template, and both parts' token counts."""
    from distill_core.lm.data import render_chat

    if tokenizer is None:
        prompt, response = lm_rows.plain_texts(row)
        return {"prompt": prompt, "response": response, "chat": isinstance(row, dict)}
    rendered = render_chat(tokenizer, row["messages"]) if isinstance(row, dict) else row
    special = not rendered.rendered  # as data.tokenise counts them
    prompt_ids = tokenizer(rendered.prompt, add_special_tokens=special)["input_ids"] if rendered.prompt else []
    response_ids = tokenizer(rendered.response, add_special_tokens=False)["input_ids"]
    return {"prompt": rendered.prompt, "response": rendered.response, "chat": isinstance(row, dict),
            "prompt_tokens": len(prompt_ids), "response_tokens": len(response_ids) + int(special)}


def _word_lengths(stats: dict[str, Any]) -> dict[str, Any] | None:
    lengths = stats.get("lengths")
    return lengths if isinstance(lengths, dict) and lengths.get("unit") == "words" else None
