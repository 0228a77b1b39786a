"""The hostile-input suite's checks: a refusal's status and message, and the state "nothing changed" compares.

The state is the row count of every model of our apps and the files under the storage roots
(dataset, artifact and checkpoint roots); the `unchanged` fixture (conftest.py) compares it
before and after a request: a refused request may not leave a row or a file behind.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings

OUR_APPS = ("accounts", "experiments", "api", "gpuqueue")


def database_state() -> dict[str, int]:
    """Row counts of every model of our apps (and of users)."""
    models = [m for label in OUR_APPS for m in apps.get_app_config(label).get_models()]
    models.append(apps.get_model("auth", "User"))
    return {m._meta.label: m.objects.count() for m in models}


def files_state() -> dict[str, int]:
    """{path: size} of every file under the storage roots.

    Files only: the per-team folders an upload creates are kept (empty) on purpose.
    """
    roots = [Path(settings.DATASET_ROOT), Path(settings.ARTIFACT_ROOT), *map(Path, settings.CHECKPOINT_ROOTS)]
    found: dict[str, int] = {}
    for root in roots:
        for directory, _, files in os.walk(root):
            for name in files:
                path = os.path.join(directory, name)
                found[path] = os.path.getsize(path)
    return found


def assert_json_refused(response, status: int, text: str = "", field: str | None = None) -> dict[str, Any]:
    """A JSON error of `status` mentioning `text`, with `field` among the fields to blame."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert isinstance(body["error"], str) and body["error"]
    if field is not None:
        assert field in body.get("fields", {}), body
    assert text in body["error"] + json.dumps(body.get("fields", {}), ensure_ascii=False), body
    return body


def assert_form_refused(response, field: str, text: str, status: int = 400) -> str:
    """An HTML form shown again with `text` among `field`'s errors ("__all__" for the form's own)."""
    assert response.status_code == status, (response.status_code, response.content[:300])
    form = response.context["form"]
    messages = " ".join(str(m) for m in form.errors.get(field, []))
    assert text in messages, dict(form.errors)
    return response.content.decode()
