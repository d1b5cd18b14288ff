"""Security wiring every route inherits: headers, sessions, proxies, safe redirects."""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from urllib.parse import unquote, urlsplit

from flask import Flask, Response, abort, current_app, g, redirect, request, session, url_for
from flask_login import current_user, user_logged_in
from sqlalchemy import select
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from .extensions import db, login_manager
from .htmx import is_htmx
from .models import User
from .models.base import MAX_INT

log = logging.getLogger("ideaboard.security")

# A fresh nonce per response, set after the page cache, so a cached body never carries one.
# Templates have no inline scripts: the nonce only keeps the policy's shape for when one is
# truly needed (and such a script must then read the nonce per request, not from the cache).
CSP = (
    "default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self'; "
    "img-src 'self' https: data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def safe_next(target: str | None, default: str = "/") -> str:
    """`target` if it is a path on this site, else `default` (no open redirects)."""
    if not target:
        return default
    # Judge the value as given and percent-decoded: some clients and proxies decode once.
    for form in (target, unquote(target)):
        cleaned = _CONTROL.sub("", form).strip()
        if cleaned != form or "\\" in cleaned:
            return default
        parts = urlsplit(cleaned)
        if parts.scheme or parts.netloc or not cleaned.startswith("/") or cleaned.startswith("//"):
            return default
    return target


def sign_in_redirect() -> Response:
    """Send an anonymous visitor to sign in, then back to where they were."""
    back = request.full_path if request.method == "GET" else _referrer_path()
    target = url_for("auth.login", next=safe_next(back, "/"))
    if is_htmx():
        resp = current_app.response_class("", 401)
        resp.headers["HX-Redirect"] = target
        return resp
    return redirect(target)


def _referrer_path() -> str:
    """The path of the page a form was posted from, if it was one of ours."""
    ref = request.referrer or ""
    host = request.host_url.rstrip("/")
    return ref[len(host) :] if ref.startswith(host + "/") else "/"


def no_store() -> None:
    """Mark this response as private to the person (auth pages, forms with tokens)."""
    g.no_store = True


def no_referrer() -> None:
    """Send no Referer from this page (its URL holds a secret, like a reset token)."""
    g.referrer_policy = "no-referrer"


# --- how long a sign-in lasts ------------------------------------------------------
#
# The session (and a remember-me cookie, which Flask-Login fills from it) holds a login id
# "<user id>:<session token>:<signed in at>:<s|r>": who, the user's current session token
# (changing it ends every session), when they last typed their password, and whether they
# asked to be remembered. So both lifetimes are enforced here, on the server, not by the
# browser's cookie expiry:
#
# - absolute: PERMANENT_SESSION_LIFETIME after signing in (REMEMBER_COOKIE_DURATION with
#   "keep me signed in"), however active the person is;
# - idle: SESSION_IDLE_TIMEOUT without a request ends a sign-in that is not remembered.
#   Last activity is written back at most every twenty-fourth of that, so a member's pages
#   do not each need a new cookie (and stay cacheable).


def epoch_now(config: Mapping) -> float:
    """Seconds since the epoch; a test sets the CLOCK config value (naive UTC) to move time."""
    clock = config.get("CLOCK")
    return clock().replace(tzinfo=UTC).timestamp() if clock else time.time()


def _now() -> float:
    return epoch_now(current_app.config)


@dataclass(frozen=True)
class LoginId:
    user_id: int
    token: str
    signed_in_at: int
    remembered: bool

    @classmethod
    def parse(cls, value: object) -> LoginId | None:
        parts = str(value).split(":")
        if len(parts) != 4 or parts[3] not in ("s", "r"):
            return None
        user_id, token, at, kind = parts
        if not (user_id.isascii() and user_id.isdigit() and at.isascii() and at.isdigit()):
            return None
        if not token or int(user_id) > MAX_INT:
            return None
        return cls(int(user_id), token, int(at), kind == "r")

    def expired(self, now: float, config: Mapping | None = None) -> bool:
        config = current_app.config if config is None else config
        key = "REMEMBER_COOKIE_DURATION" if self.remembered else "PERMANENT_SESSION_LIFETIME"
        return now - self.signed_in_at > config[key].total_seconds()


def login_id(user: User, remember: bool, at: float) -> str:
    """The login id a sign-in at `at` (epoch seconds) puts in the session."""
    return f"{user.get_id()}:{int(at)}:{'r' if remember else 's'}"


@login_manager.user_loader
def _load_user(value: str) -> User | None:
    parsed = LoginId.parse(value)
    if parsed is None or parsed.expired(_now()):
        return None  # also a remember-me cookie older than REMEMBER_COOKIE_DURATION
    user = db.session.scalar(select(User).where(User.id == parsed.user_id))
    # A changed session token (password change, demotion, disabling) ends every older
    # session; disabling changes it, and a disabled account is refused here as well.
    if user is None or user.session_token != parsed.token or user.disabled_at is not None:
        return None
    return user


def _stamp_sign_in(_app, user: User, **_extra) -> None:
    """On every sign-in: record when, and whether it is remembered, in the login id."""
    now = _now()
    session["_user_id"] = login_id(user, session.get("_remember") == "set", now)
    session["_seen_at"] = int(now)


def sign_in_state(sess: Mapping, now: float, config: Mapping) -> str:
    """What a session's sign-in needs before anything reads it: "none" (no sign-in), "ok",
    "end" (past its absolute lifetime, or idle too long) or "touch" (fine, but its
    last-activity stamp is due). Pure, so the vote fast path (perf/fastvote.py) judges
    a session exactly as Flask's requests do."""
    value = sess.get("_user_id")
    if value is None:
        return "none"
    parsed = LoginId.parse(value)
    if parsed is None:
        return "end"
    if parsed.expired(now, config):
        return "end"
    if parsed.remembered:
        return "ok"
    idle = config["SESSION_IDLE_TIMEOUT"].total_seconds()
    seen = sess.get("_seen_at", parsed.signed_in_at)
    if now - seen > idle:
        return "end"
    return "touch" if now - seen > idle / 24 else "ok"


def _expire_sign_in() -> None:
    """End a sign-in past its absolute lifetime, or idle too long, before anything reads it."""
    now = _now()
    state = sign_in_state(session, now, current_app.config)
    if state == "end":
        lang = session.get("lang")
        session.clear()  # the remember-me cookie, if any, is judged by the loader
        if lang:
            session["lang"] = lang
    elif state == "touch":
        session["_seen_at"] = int(now)


def uses_hsts(config: Mapping) -> bool:
    return config["BASE_URL"].startswith("https://")


def security_headers(hsts: bool, referrer_policy: str | None = None) -> list[tuple[str, str]]:
    """The headers every response carries (the CSP with a fresh nonce)."""
    headers = [
        ("Content-Security-Policy", CSP.format(nonce=secrets.token_urlsafe(18))),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", referrer_policy or "strict-origin-when-cross-origin"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
    ]
    if hsts:
        headers.append(("Strict-Transport-Security", "max-age=31536000; includeSubDomains"))
    return headers


_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def refusal(req) -> int | None:
    """The status every request of this shape is refused with before any view, or None.

    The one place these checks live: a before_request hook applies them to each request
    Flask handles, and the vote fast path (perf/fastvote.py) to each vote before it
    answers one, so the two cannot disagree. `req` is a request of the app's class.

    - 400 for a NUL in the path or in a query value: PostgreSQL can neither store nor
      compare text holding one, so it is refused as bad input here rather than failing
      deep in a query (form fields get a message beside the field instead);
    - 413 for a body declared larger than MAX_CONTENT_LENGTH, before any of it is read
      (werkzeug would refuse it when the form is read; this is the same answer, sooner).
    """
    if "\x00" in req.path or (
        req.query_string and any("\x00" in value for value in req.args.values())
    ):
        return 400
    length = req.content_length
    if length and req.method in _BODY_METHODS:
        limit = req.max_content_length
        if limit is not None and length > limit:
            return 413
    return None


class IdConverter(IntegerConverter):
    """`<int:...>` in every URL: a number that fits the database's integer columns.

    A larger one matches no route (404) instead of reaching the database, where SQLite
    overflows and PostgreSQL refuses it: both would be a 500.
    """

    def __init__(self, map, *args, **kwargs) -> None:
        kwargs.setdefault("max", MAX_INT)
        super().__init__(map, *args, **kwargs)


def configured_root(config: Mapping) -> str:
    """The path prefix the app is served under: BASE_URL's path ("" at a domain's root)."""
    return unquote(urlsplit(config["BASE_URL"]).path).rstrip("/")


def proxy_fix(app: Flask, wsgi_app):
    """The WSGI layer that takes the client's address and scheme from PROXY_HOPS trusted
    proxies (None when the app is not behind one)."""
    hops = app.config.get("PROXY_HOPS", 0)
    return ProxyFix(wsgi_app, x_for=hops, x_proto=hops, x_host=0) if hops else None


def init_app(app: Flask) -> None:
    # Before any blueprint adds its rules, so every <int:...> gets the bound.
    app.url_map.converters["int"] = IdConverter
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "basic"
    user_logged_in.connect(_stamp_sign_in, app)
    # First of all before_request hooks: the page cache must not serve a member's page to
    # a session that has just expired.
    app.before_request_funcs.setdefault(None, []).insert(0, _expire_sign_in)
    hsts = uses_hsts(app.config)
    root = configured_root(app.config)

    def _refuse_foreign_root() -> Response | None:
        # Every link is built from the script root, which gunicorn takes from a SCRIPT_NAME
        # header when the request comes from a trusted proxy address. A page made under any
        # other prefix than BASE_URL's would link elsewhere (and caches share rendered
        # text), so nothing is served there: the app is mounted at one place only.
        if request.script_root != root:
            # Plain text: an error page would build its links under that root too.
            return Response("Not Found", 404, {"Content-Type": "text/plain; charset=utf-8"})
        return None

    # Before every other hook, the page cache's and the sign-in check's included.
    app.before_request_funcs[None].insert(0, _refuse_foreign_root)

    login_manager.unauthorized_handler(sign_in_redirect)

    @app.before_request
    def _refuse_early() -> None:
        status = refusal(request)
        if status is not None:
            abort(status)

    @app.after_request
    def _headers(resp: Response) -> Response:
        h = resp.headers
        for name, value in security_headers(hsts, g.get("referrer_policy")):
            if name != "Content-Security-Policy" or name not in h:
                h[name] = value
        if request.endpoint == "static":
            return resp
        # The session check first: on a cached member page the user is never loaded.
        if g.get("no_store") or "_user_id" in session or current_user.is_authenticated:
            h["Cache-Control"] = "no-store"
        elif "Cache-Control" not in h:
            h["Cache-Control"] = "no-cache"
        return resp
