"""Where `distillery login` keeps the server URL and token: a 0600 JSON file in the user's config directory.

$DISTILLERY_URL and $DISTILLERY_TOKEN, when set, take precedence over the file (CI, containers);
$DISTILLERY_CONFIG_DIR moves the directory (tests). Otherwise $XDG_CONFIG_HOME/distillery, else
~/.config/distillery (on Windows %APPDATA%\\distillery).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

FILENAME = "credentials.json"


class NotLoggedIn(Exception):
    """No server URL or token: neither `distillery login` nor the environment gave one."""


@dataclass(frozen=True)
class Credentials:
    url: str
    token: str


def config_dir() -> Path:
    if os.environ.get("DISTILLERY_CONFIG_DIR"):
        return Path(os.environ["DISTILLERY_CONFIG_DIR"])
    if sys.platform == "win32" and os.environ.get("APPDATA"):
        return Path(os.environ["APPDATA"]) / "distillery"
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "distillery"


def path() -> Path:
    return config_dir() / FILENAME


def save(url: str, token: str) -> Path:
    """Write the credentials, readable by the user only (0600, also when the file existed with wider rights)."""
    target = path()
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = target.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        os.chmod(tmp, 0o600)  # O_CREAT's mode is only used for a new file, and the umask applies to it
        json.dump({"url": url.rstrip("/"), "token": token}, fh)
    os.replace(tmp, target)
    return target


def load(url: str | None = None, token: str | None = None) -> Credentials:
    """Explicit arguments, else the environment, else the saved file."""
    url = url or os.environ.get("DISTILLERY_URL")
    token = token or os.environ.get("DISTILLERY_TOKEN")
    if not (url and token) and path().is_file():
        try:
            saved = json.loads(path().read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise NotLoggedIn(f"Cannot read {path()}: {exc}; run `distillery login` again.") from None
        url, token = url or saved.get("url"), token or saved.get("token")
    if not url or not token:
        raise NotLoggedIn("Not logged in: run `distillery login URL` (or set DISTILLERY_URL and DISTILLERY_TOKEN).")
    return Credentials(url.rstrip("/"), token)
