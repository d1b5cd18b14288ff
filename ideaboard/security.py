"""Security wiring every route inherits: headers, sessions, proxies, safe redirects."""

from __future__ import annotations

import logging
import re
import secrets
from urllib.parse import unquote, urlsplit

from flask import Flask, Response, abort, g, request, session
from flask_login import current_user
from sqlalchemy import select
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from .extensions import db, login_manager
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


def no_store() -> None:
    """Mark this response as private to the person (auth pages, forms with tokens)."""
    g.no_store = True


def no_referrer() -> None:
    """Send no Referer from this page (its URL holds a secret, like a reset token)."""
    g.referrer_policy = "no-referrer"


@login_manager.user_loader
def _load_user(login_id: str) -> User | None:
    user_id, _, token = login_id.partition(":")
    if not user_id.isdigit() or not token:
        return None
    user = db.session.scalar(select(User).where(User.id == int(user_id)))
    # A changed session token (password change, demotion) ends every older session.
    if user is None or user.session_token != token:
        return None
    return user


class IdConverter(IntegerConverter):
    """`<int:...>` in every URL: a number that fits the database's integer columns.

    A larger one matches no route (404) instead of reaching the database, where SQLite
    overflows and PostgreSQL refuses it: both would be a 500.
    """

    def __init__(self, map, *args, **kwargs) -> None:
        kwargs.setdefault("max", MAX_INT)
        super().__init__(map, *args, **kwargs)


def init_app(app: Flask) -> None:
    # Before any blueprint adds its rules, so every <int:...> gets the bound.
    app.url_map.converters["int"] = IdConverter
    hops = app.config.get("PROXY_HOPS", 0)
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=0)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "basic"
    hsts = app.config["BASE_URL"].startswith("https://")

    @login_manager.unauthorized_handler
    def _unauthorized():
        from .auth.views import sign_in_redirect

        return sign_in_redirect()

    @app.before_request
    def _refuse_nul_in_query() -> None:
        # PostgreSQL cannot store or even compare text containing NUL: refuse it as bad
        # input here rather than fail deep in a query. Form fields get per-field messages.
        if any("\x00" in v for v in request.args.values()) or "\x00" in request.path:
            abort(400)

    @app.after_request
    def _headers(resp: Response) -> Response:
        h = resp.headers
        if "Content-Security-Policy" not in h:
            h["Content-Security-Policy"] = CSP.format(nonce=secrets.token_urlsafe(18))
        h["X-Content-Type-Options"] = "nosniff"
        h["X-Frame-Options"] = "DENY"
        h["Referrer-Policy"] = g.get("referrer_policy", "strict-origin-when-cross-origin")
        h["Cross-Origin-Opener-Policy"] = "same-origin"
        if hsts:
            h["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
        if request.endpoint == "static":
            return resp
        # The session check first: on a cached member page the user is never loaded.
        if g.get("no_store") or "_user_id" in session or current_user.is_authenticated:
            h["Cache-Control"] = "no-store"
        elif "Cache-Control" not in h:
            h["Cache-Control"] = "no-cache"
        return resp
