"""Error answers: a styled page, an htmx fragment, or JSON under /api/."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from markupsafe import escape
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError

from .extensions import db
from .htmx import is_htmx
from .seclog import security_event
from .services.errors import DomainError

log = logging.getLogger("ideaboard")

# Fields never echoed back on the "form expired" page.
_SECRET_FIELDS = {"password", "current_password", "new_password", "csrf_token"}


def _messages() -> dict[int, tuple[str, str]]:
    return {
        400: (_("Bad request"), _("The request could not be understood.")),
        401: (_("Sign in needed"), _("Sign in to do that.")),
        403: (_("Not allowed"), _("You do not have permission to do that.")),
        404: (_("Not found"), _("There is nothing at this address.")),
        405: (_("Method not allowed"), _("This address does not accept that kind of request.")),
        409: (_("Changed meanwhile"), _("Someone else changed this while you were working.")),
        413: (_("Too large"), _("What you sent is larger than we accept.")),
        422: (_("Check your input"), _("Some of what you entered needs another look.")),
        429: (_("Slow down"), _("Too many attempts. Wait a moment and try again.")),
        500: (_("Something went wrong"), _("An unexpected error happened on our side.")),
        503: (
            _("Temporarily unavailable"),
            _("We could not reach our database. Nothing was saved; please try again shortly."),
        ),
    }


def _from_our_pages() -> bool:
    """Whether the browser says this request came from one of our own pages."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site == "same-origin"
    origin = request.headers.get("Origin")
    return origin is None or origin == request.host_url.rstrip("/")


def wants_json() -> bool:
    return request.path.startswith("/api/")


def error_response(status: int, message: str | None = None, **context) -> Response:
    """Answer `status` in the form the client asked for."""
    title, default = _messages().get(status, _messages()[500])
    message = message or default
    if wants_json():
        resp = jsonify(error={"code": status, "message": str(message)})
    else:
        template = "errors/_error.html" if is_htmx() else "errors/error.html"
        try:
            body = render_template(template, status=status, title=title, message=message, **context)
        except Exception:  # noqa: BLE001 - the page itself needs the database, which may be down
            log.exception("error page failed to render")
            body = f"<!doctype html><title>{status}</title><h1>{escape(title)}</h1>"
        resp = Response(body, mimetype="text/html")
    resp.status_code = status
    return resp


def init_app(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        if exc.code and exc.code < 400:
            return exc
        resp = error_response(exc.code or 500)
        if exc.code == 403:
            security_event("authz.denied", level=logging.WARNING)
        if exc.code == 429:
            security_event("rate_limited", level=logging.WARNING, limit=str(exc.description))
            retry = getattr(exc, "retry_after", None)
            resp.headers["Retry-After"] = str(int(retry)) if retry else "60"
        if exc.code == 405 and exc.valid_methods:
            resp.headers["Allow"] = ", ".join(exc.valid_methods)
        return resp

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError):
        security_event("csrf.failed", level=logging.WARNING, reason=exc.description)
        if is_htmx():
            # The page's token is stale (e.g. a new session): reload it for a fresh one.
            resp = error_response(400, _("Your session changed. The page will reload."))
            resp.headers["HX-Refresh"] = "true"
            return resp
        kept = {k: v for k, v in request.form.items() if k not in _SECRET_FIELDS and v.strip()}
        if not _from_our_pages():
            # No "send again" for a post made elsewhere: one click would finish the forgery
            # with this session's token, and the token would start a session for a post that
            # came without our cookie (cross-site), replacing the member's: a forced sign-out.
            kept = {}
        return error_response(
            400,
            _("This form expired or did not come from this site, so nothing was saved."),
            kept=kept,
            resend_to=request.path,
        )

    @app.errorhandler(DomainError)
    def _domain(exc: DomainError):
        db.session.rollback()
        if exc.status_code == 403:
            security_event("authz.denied", level=logging.WARNING)
        return error_response(exc.status_code, exc.message or None)

    @app.errorhandler(OperationalError)
    def _db_down(exc: OperationalError):
        db.session.rollback()
        log.error("database unavailable: %s", exc.__class__.__name__)
        resp = error_response(503)
        resp.headers["Retry-After"] = "5"
        return resp

    @app.errorhandler(InternalServerError)
    def _server_error(exc: InternalServerError):
        db.session.rollback()
        return error_response(500)
