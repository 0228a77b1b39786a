"""Distillery's Python client and the `distillery` command: a thin layer over the REST API (docs/API.md).

    from distillery_client import api
    api.login("http://127.0.0.1:8000", "dst_...")
    for run in api.ls(status="running"):
        print(run["id"], run["name"], run["progress"])

Only the standard library and tqdm: it installs anywhere the project does, without Django or torch.
"""

from distillery_client.credentials import NotLoggedIn
from distillery_client.http import ApiError, Connection, Unreachable

__all__ = ["ApiError", "Connection", "NotLoggedIn", "Unreachable"]
