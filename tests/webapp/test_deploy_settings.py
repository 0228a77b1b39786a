"""Deployment defaults: a real secret outside DEBUG, `check --deploy` clean for compose, CSP, static files."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "webapp" / "templates"
_SUBST = re.compile(r"\$\{(?P<name>[A-Z_0-9]+)(?::(?P<op>[-?])(?P<arg>[^}]*))?\}")


def _compose_environment(given: dict[str, str]) -> dict[str, str]:
    """The app services' environment from docker-compose.yml, with ${...} expanded as compose does."""
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    raw = compose["x-app"]["environment"]

    def expand(match: re.Match) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if given.get(name):
            return given[name]
        if op == "?":
            raise LookupError(f"compose refuses to start: {arg}")
        return arg or ""

    return {key: _SUBST.sub(expand, str(value)) for key, value in raw.items()}


def _run(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DISTILLERY_", "DATABASE_URL",
                                                                       "CELERY_"))}
    base["DJANGO_SETTINGS_MODULE"] = "webapp.settings"
    return subprocess.run([sys.executable, *argv], cwd=REPO, env={**base, **env}, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture
def secret_key() -> str:
    return secrets.token_urlsafe(50)


@pytest.fixture
def compose_env(tmp_path, secret_key) -> dict[str, str]:
    env = _compose_environment({"DJANGO_SECRET_KEY": secret_key})
    env["DISTILLERY_VAR_DIR"] = str(tmp_path / "var")  # the image's /var/lib/distillery
    return env


def test_compose_has_no_default_secret_key():
    with pytest.raises(LookupError, match="set DJANGO_SECRET_KEY"):
        _compose_environment({})


def test_check_deploy_is_clean_with_the_compose_environment(compose_env):
    assert compose_env["DJANGO_DEBUG"] == "0" and compose_env["DISTILLERY_BEHIND_TLS_PROXY"] == "1"
    result = _run(compose_env, "manage.py", "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_settings_refuse_to_load_without_a_secret_key_outside_debug(compose_env):
    del compose_env["DJANGO_SECRET_KEY"]
    result = _run(compose_env, "manage.py", "check")
    assert result.returncode != 0
    assert "ImproperlyConfigured: DJANGO_SECRET_KEY is not set" in result.stderr
    assert "secrets.token_urlsafe(50)" in result.stderr  # says how to make one


@pytest.mark.parametrize("weak", ["change-me", "short-key", "a" * 60])
def test_settings_refuse_a_weak_or_published_secret_key(compose_env, weak):
    compose_env["DJANGO_SECRET_KEY"] = weak
    result = _run(compose_env, "manage.py", "check")
    assert result.returncode != 0 and "DJANGO_SECRET_KEY is too short or a published example" in result.stderr


def test_a_process_started_without_the_makefile_is_a_deployment_and_needs_a_key(tmp_path):
    env = {"DISTILLERY_VAR_DIR": str(tmp_path / "var")}  # _run drops DJANGO_DEBUG from the environment
    started = _run(env, "-c", "import django; django.setup()")
    assert started.returncode != 0 and "DJANGO_SECRET_KEY is not set" in started.stderr
    assert "make run" in started.stderr and not (tmp_path / "var" / "secret_key").exists()


def test_debug_mode_keeps_the_generated_key_under_var(tmp_path):
    var = tmp_path / "var"
    code = "import django; django.setup(); from django.conf import settings; print(settings.DEBUG, settings.SECRET_KEY)"
    first = _run({"DISTILLERY_VAR_DIR": str(var), "DJANGO_DEBUG": "1"}, "-c", code)
    second = _run({"DISTILLERY_VAR_DIR": str(var), "DJANGO_DEBUG": "1"}, "-c", code)
    assert first.returncode == 0, first.stderr
    debug, key = first.stdout.split()
    assert debug == "True" and key == (var / "secret_key").read_text().strip() and len(key) >= 50
    assert second.stdout == first.stdout
    assert (var / "secret_key").stat().st_mode & 0o077 == 0


def test_outside_debug_static_files_are_hashed_and_compressed(compose_env):
    collected = _run(compose_env, "manage.py", "collectstatic", "--noinput")
    assert collected.returncode == 0, collected.stderr
    root = Path(compose_env["DISTILLERY_VAR_DIR"]) / "staticfiles"
    url = _run(compose_env, "-c", "import django; django.setup(); "
               "from django.templatetags.static import static; print(static('css/app.css'))")
    assert url.returncode == 0, url.stderr
    hashed = url.stdout.strip()
    assert re.fullmatch(r"/static/css/app\.[0-9a-f]{12}\.css", hashed), hashed
    assert (root / hashed.removeprefix("/static/")).exists()
    assert (root / (hashed.removeprefix("/static/") + ".gz")).exists()
    assert list((root / "vendor").glob("plotly.min.*.js.gz"))


def test_every_page_carries_a_content_security_policy(alice_client):
    policy = alice_client.get("/")["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["script-src"] == "'self'"  # no inline or eval'd code
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
    assert "Content-Security-Policy" in alice_client.get("/accounts/login/")


def test_no_template_holds_inline_script_code():
    # script-src 'self' blocks inline code: page data goes through json_script, code through static files.
    for path in TEMPLATES.rglob("*.html"):
        text = path.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text):
            assert "src=" in tag, f"{path.relative_to(REPO)} has an inline <script>: {tag}"
        assert not re.search(r"\son[a-z]+\s*=", text), f"{path.relative_to(REPO)} has an inline event handler"
        assert "javascript:" not in text, f"{path.relative_to(REPO)} has a javascript: URL"
