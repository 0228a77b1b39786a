"""Word-vector files: upload, check every line (distill_core.word_vectors), register for the team; the page.

A file is stored under DATASET_ROOT/<team-slug>/vectors/<random>/vectors.txt with our own name, the
same folder rules as the team's datasets (ownership.dataset_dir), capped while it streams like a
dataset split, and read in full before its row is saved: nothing half-registered survives a refusal.
An experiment may use a file only when the row belongs to its team and the file still lies in that
team's folder (`usable_path`).
"""

from __future__ import annotations

import logging
import secrets
import shutil
from pathlib import Path

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import IntegrityError, transaction
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from webapp.accounts.access import owned
from webapp.accounts.models import teams_of
from webapp.registry import datasets, ownership, upload_limits
from webapp.registry.form_base import TeamFormMixin
from webapp.registry.forms import dataset_too_large_message, max_dataset_upload_bytes
from webapp.registry.models import WordVectors
from webapp.registry.ownership import usable_vectors_path as usable_path  # noqa: F401
from webapp.registry.ownership import vectors_dir

log = logging.getLogger(__name__)


class WordVectorsForm(TeamFormMixin, forms.Form):
    team = forms.ModelChoiceField(queryset=None, empty_label=None)
    name = forms.CharField(max_length=100, help_text="e.g. glove-6B-300d")
    file = forms.FileField(label="Vectors file", help_text="word2vec or GloVe text format: a word and its values "
                                                           "per line (an optional 'count dim' first line). UTF-8.")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.setup_team(user)

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload and upload.size > max_dataset_upload_bytes():  # the upload handler stops such a file first
            raise forms.ValidationError(dataset_too_large_message(upload.size))
        return upload

    def clean(self):
        cleaned = super().clean()
        self.check_unique_name(WordVectors, cleaned)
        return cleaned


def register_upload(*, team, user, name: str, upload) -> WordVectors:
    """Store, check and register an uploaded file; raises datasets.UploadRefused naming the field."""
    from distill_core.word_vectors import WordVectorError, describe_word_vectors

    try:
        directory = vectors_dir(team) / secrets.token_hex(8)
    except ownership.PathRefused as exc:
        raise datasets.UploadRefused(exc.message, "team") from None
    directory.mkdir(parents=True)
    try:
        path = Path(datasets.store(upload, directory / "vectors.txt"))
        try:
            facts = describe_word_vectors(path)
        except WordVectorError as exc:
            raise datasets.UploadRefused(exc.message.replace("vectors.txt", "The file"), "file") from None
        try:
            with transaction.atomic():
                row = WordVectors.objects.create(team=team, name=name, path=str(path), created_by=user, **facts)
        except IntegrityError:
            raise datasets.UploadRefused(f"{team} already has a word-vector file called {name!r}.", "name") from None
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    log.info("Registered word vectors %s (%s) for team %s: %s", row.pk, name, team.pk, facts)
    return row


@login_required
@csrf_exempt  # CSRF is checked in _word_vectors, after the capped upload handler is installed
def word_vectors(request):
    """The team's word-vector files and the upload form."""
    if request.method == "POST" and upload_limits.declared_too_large(request, max_dataset_upload_bytes()):
        return _render(request, _refused(WordVectorsForm(user=request.user), None), status=413)
    upload_limits.install(request, max_dataset_upload_bytes())
    return _word_vectors(request)


@csrf_protect
def _word_vectors(request):
    files = request.FILES  # parses the body through the capped handler
    if request.method == "POST" and request.upload_too_large:
        return _render(request, _refused(WordVectorsForm(user=request.user), "file"), status=413)
    form = WordVectorsForm(request.POST or None, files or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        cd = form.cleaned_data
        try:
            row = register_upload(team=cd["team"], user=request.user, name=cd["name"], upload=cd["file"])
        except datasets.UploadRefused as exc:
            form.add_error(exc.field, exc.message)
        else:
            messages.success(request, f"Registered the word vectors “{row.name}”: {row.count:,} words × {row.dim}.")
            return redirect("registry:word_vectors")
    return _render(request, form, status=400 if form.is_bound else 200)


def _refused(form: WordVectorsForm, field: str | None) -> WordVectorsForm:
    form.cleaned_data = {}
    form.add_error(field, dataset_too_large_message())
    return form


def _render(request, form, status: int = 200):
    rows = owned(request.user, WordVectors).select_related("team", "created_by").order_by("team__name", "name")
    return render(request, "word_vectors/list.html", {
        "form": form, "rows": rows, "has_teams": teams_of(request.user).exists(), "nav": "datasets"}, status=status)
