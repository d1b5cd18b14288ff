"""Members' public profiles, and each member's own "my influence" page."""

from __future__ import annotations

from flask import Blueprint, abort, request
from flask_login import current_user, login_required

from ideaboard.htmx import render
from ideaboard.security import no_store
from ideaboard.services import influence as influence_service
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


def _page() -> int:
    try:
        return int(request.args.get("page", 1))
    except ValueError:
        return 1


@bp.get("/account/influence")
@login_required
def influence():
    """The signed-in member's ideas (posted or voted for), where each stands now, and how
    many of those they backed shipped. Only their own: the URL names nobody."""
    no_store()  # whom they voted for is theirs alone
    data = influence_service.influence(
        current_user._get_current_object(), _page(), request.args.get("status")
    )
    return render("people/influence.html", influence=data)
