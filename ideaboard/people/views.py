"""Members' public profiles."""

from __future__ import annotations

from flask import Blueprint, abort, request

from ideaboard.htmx import render
from ideaboard.services import profiles
from ideaboard.urls import profile_url

bp = Blueprint("people", __name__)


@bp.record_once
def _globals(state) -> None:
    state.app.jinja_env.globals["profile_url"] = profile_url


@bp.get("/u/<int:user_id>")
def profile(user_id: int):
    """A member's public profile: name, member since, their public ideas, how many shipped."""
    try:
        page = int(request.args.get("page", 1))
    except ValueError:
        page = 1
    user = profiles.get_profile_user(user_id)
    if user is None:
        abort(404)
    return render("people/profile.html", profile=profiles.profile(user, page))
