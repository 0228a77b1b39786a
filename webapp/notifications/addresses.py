"""Where a webhook may point: public addresses only, unless the deployment allows private ones.

A webhook URL is typed by a user and fetched by the server, so without a check it reaches what
only the server can reach (the database, Redis, a cloud metadata endpoint, an admin page on
localhost). `problem(url)` resolves the host and refuses loopback, private, link-local, reserved,
multicast and unspecified addresses; the form asks it when a hook is added and send.py asks again
before every POST (a name may resolve elsewhere later), and send.py never follows a redirect.
`DISTILLERY_WEBHOOK_ALLOW_PRIVATE=1` lifts the rule for a closed network whose receivers are private
(the tests' receiver on 127.0.0.1 too).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings


def _private(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def problem(url: str) -> str | None:
    """Why `url` may not receive webhooks here, or None."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return "Only http:// and https:// addresses can receive webhooks."
    if getattr(settings, "WEBHOOK_ALLOW_PRIVATE", False):
        return None
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError):
        return f"The host {parts.hostname[:100]!r} does not resolve."
    if any(_private(info[4][0]) for info in infos):
        return (f"{parts.hostname[:100]} is a private, loopback or reserved address; webhooks go to public "
                f"receivers (an administrator can allow private ones: DISTILLERY_WEBHOOK_ALLOW_PRIVATE=1).")
    return None
