"""The one place the client talks HTTP: bearer token, JSON in and out, the API's error shape as an exception."""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.parse
import urllib.request
from typing import IO, Any

from distillery_client.credentials import Credentials, load


class ApiError(Exception):
    """The server answered with an error: `status`, its message and the fields to blame."""

    def __init__(self, status: int, message: str, fields: dict[str, list[str]] | None = None):
        super().__init__(f"{status}: {message}")
        self.status, self.message, self.fields = status, message, fields or {}

    def __str__(self) -> str:
        details = "; ".join(f"{name}: {' '.join(messages)}" for name, messages in self.fields.items())
        return f"{self.message} ({details})" if details and details not in self.message else self.message


class Unreachable(Exception):
    """No answer at all: the server is down, restarting or unreachable (worth retrying later)."""


class Connection:
    """A server URL and a token; `call` makes one request."""

    def __init__(self, credentials: Credentials | None = None, timeout: float = 30.0):
        self.credentials = credentials or load()
        self.timeout = timeout

    @property
    def url(self) -> str:
        return self.credentials.url

    def _request(self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None):
        url = self.url + path
        if query:
            pairs = [(k, v) for k, v in query.items() if v is not None and v != ""]
            url += "?" + urllib.parse.urlencode(pairs, doseq=True)
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": f"Bearer {self.credentials.token}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)  # noqa: S310 (the user's own server URL)
        except urllib.error.HTTPError as exc:
            try:
                payload = json.loads(exc.read() or b"{}")
            except ValueError:
                payload = {}
            raise ApiError(exc.code, payload.get("error") or f"HTTP {exc.code} {exc.reason}",
                           payload.get("fields")) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
            raise Unreachable(f"{self.url} did not answer: {getattr(exc, 'reason', exc)}") from None

    def call(self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None) -> Any:
        """The JSON answer of `method path` (ApiError for an error answer, Unreachable for none)."""
        try:
            with self._request(method, path, body, query) as response:
                return json.load(response)
        except (ConnectionError, TimeoutError) as exc:  # the connection dropped while reading the answer
            raise Unreachable(f"{self.url} dropped the connection: {exc}") from None

    def download(self, path: str, target: IO[bytes]) -> int:
        """Stream a file answer into `target`; returns the bytes written."""
        with self._request("GET", path) as response:
            shutil.copyfileobj(response, target, 1 << 20)
            return target.tell()
