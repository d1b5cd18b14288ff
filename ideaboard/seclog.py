"""Security events: one line each on the `ideaboard.security` logger, never a secret.

Every event carries its name, a UTC timestamp, the user id (or `-`), the client IP (after
ProxyFix) and the route, as `key=value` pairs in the message and as a dict in
`record.security` for structured handlers:

    event=login.failed at=2026-11-23T16:00:00.123456Z user_id=7 ip=10.0.0.1 route="POST /login"

Values that are not plain tokens are quoted JSON-style, and every control, line or
paragraph separator and format character (CR, LF, NEL, U+2028, U+202E ...) is escaped, so
text a person typed can never start a second line or pose as another record. The route
is the URL rule (`/reset/<token>`), never the path, so a token in a URL stays out of logs.
Callers pass ids and fixed words; passwords, tokens, links and message bodies are never
given to this function.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from datetime import UTC, datetime
from typing import Any

from flask import Flask, g, has_request_context, request, session

log = logging.getLogger("ideaboard.security")
LOG_FORMAT = "%(asctime)s %(levelname)s [%(name)s] %(message)s"

_PLAIN = re.compile(r"[A-Za-z0-9_.:/@+\-]+")
_UNSAFE_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}
_CURRENT = object()


def escape_value(value: Any) -> str:
    """`value` as one log token: bare if plain, else a quoted string with no raw controls."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if _PLAIN.fullmatch(text):
        return text
    quoted = json.dumps(text, ensure_ascii=False)
    return "".join(
        f"\\u{ord(ch):04x}"
        if ord(ch) <= 0xFFFF and unicodedata.category(ch) in _UNSAFE_CATEGORIES
        else (f"\\U{ord(ch):08x}" if unicodedata.category(ch) in _UNSAFE_CATEGORIES else ch)
        for ch in quoted
    )


def _user_id() -> int | None:
    """The signed-in user's id, without a database query (it may be the failing part)."""
    user = g.get("_login_user") if has_request_context() else None
    if user is not None:
        return user.id if getattr(user, "is_authenticated", False) else None
    if has_request_context():
        claimed = str(session.get("_user_id") or "").partition(":")[0]
        return int(claimed) if claimed.isdigit() else None
    return None


def _route() -> str:
    if not has_request_context():
        return "cli"
    rule = request.url_rule.rule if request.url_rule is not None else request.path
    return f"{request.method} {rule}"


def security_event(
    event: str, *, user_id: Any = _CURRENT, level: int = logging.INFO, **fields: Any
) -> None:
    """Log one security event with who, from where and on which route."""
    at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    uid = _user_id() if user_id is _CURRENT else user_id
    data = {
        "event": event,
        "at": at,
        "user_id": uid,
        "ip": request.remote_addr if has_request_context() else None,
        "route": _route(),
        **fields,
    }
    message = " ".join(f"{key}={escape_value(value)}" for key, value in data.items())
    log.log(level, "%s", message, extra={"security": data})


def init_app(app: Flask) -> None:
    """Make sure the app's INFO records (security events, mail) reach stderr somewhere.

    Under gunicorn or `flask run` nobody configures Python logging, and its last-resort
    handler prints only warnings, so sign-ins or "mail saved to ..." would vanish. A
    deployment that configures logging itself (a handler anywhere up the chain, or a level
    on the `ideaboard` logger) is left alone.
    """
    root = logging.getLogger("ideaboard")
    if root.level == logging.NOTSET:
        root.setLevel(app.config.get("LOG_LEVEL") or logging.INFO)
    if not root.hasHandlers():
        handler = logging.StreamHandler()  # stderr: gunicorn's error log, journald, docker
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        root.addHandler(handler)
