"""Home, health, the favicon and language choice."""

from __future__ import annotations

import functools
from pathlib import Path

from flask import Blueprint, current_app, jsonify, make_response, redirect, request
from sqlalchemy import text

from ideaboard.extensions import csrf, db
from ideaboard.htmx import render
from ideaboard.i18n import LOCALE_COOKIE
from ideaboard.security import safe_next
from ideaboard.services import boards, changelog, ideas

bp = Blueprint("main", __name__)


@bp.get("/")
def home():
    """Boards and the most active ideas."""
    return render(
        "main/home.html",
        boards=boards.list_boards(),
        active=ideas.most_active(),
        shipped=changelog.shipped_count(),
    )


@bp.get("/favicon.ico")
def favicon():
    """The site's icon where browsers and feed readers look for it without a <link>."""
    # An SVG under the .ico name: every current browser reads it by its Content-Type.
    # Revalidated by its ETag, as pages are (security.py sets Cache-Control).
    resp = make_response(_favicon(current_app.static_folder))
    resp.mimetype = "image/svg+xml"
    resp.add_etag()
    return resp.make_conditional(request)


@functools.cache
def _favicon(folder: str) -> bytes:
    return (Path(folder) / "favicon.svg").read_bytes()


@bp.get("/healthz")
def healthz():
    """200 ok when the app and its database answer; 503 otherwise."""
    try:
        db.session.execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - any failure means unhealthy
        db.session.rollback()
        return jsonify(status="unavailable", database=False), 503
    return make_response("ok", 200, {"Content-Type": "text/plain; charset=utf-8"})


@bp.post("/lang")
@csrf.exempt  # it only sets a cookie; no token keeps visitors' pages cacheable
def set_language():
    """Remember the chosen language in a cookie and go back."""
    lang = request.form.get("lang", "")
    resp = redirect(safe_next(request.form.get("next"), "/"), 303)
    if lang in current_app.config["LANGUAGES"]:
        resp.set_cookie(
            LOCALE_COOKIE,
            lang,
            max_age=365 * 24 * 3600,
            samesite="Lax",
            httponly=True,
            secure=current_app.config["SESSION_COOKIE_SECURE"],
        )
    return resp
