"""The read-only JSON API, v1."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, current_app, jsonify, request, url_for
from flask_babel import gettext as _

from ideaboard.markup import render_markdown
from ideaboard.models import Idea
from ideaboard.services import boards, ideas, roadmap
from ideaboard.services.errors import NotFound
from ideaboard.urls import idea_url

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def _iso(dt: datetime | None) -> str | None:
    return dt.replace(tzinfo=UTC).isoformat() if dt else None


def _absolute(path: str) -> str:
    return current_app.config["BASE_URL"] + path


def idea_json(idea: Idea) -> dict:
    return {
        "id": idea.id,
        "title": idea.title,
        "board": idea.board.slug,
        "kind": idea.kind,
        "status": idea.status,
        "votes": idea.vote_count,
        "comments": idea.comment_count,
        "author": idea.author.display_name,
        "created_at": _iso(idea.created_at),
        "url": _absolute(idea_url(idea)),
    }


@bp.get("/ideas")
def list_ideas():
    """Ideas as JSON, with the same query as the /ideas page."""
    board = None
    if request.args.get("board"):
        board = boards.find_board(request.args["board"])
        if board is None:
            raise NotFound(_("Unknown board."))
    query = ideas.IdeaQuery.parse(request.args, board=board)
    page = ideas.list_ideas(query)
    next_url = None
    if page.has_next:
        args = query.args(page=query.page + 1)
        if board is not None:
            args["board"] = board.slug
        next_url = _absolute(url_for("api.list_ideas", **args))
    return jsonify(items=[idea_json(i) for i in page.items], next=next_url)


@bp.get("/ideas/<int:idea_id>")
def show_idea(idea_id: int):
    """One idea with its sanitised body and status history."""
    idea = ideas.get_idea(idea_id)
    data = idea_json(idea)
    data["body_html"] = str(render_markdown(idea.body))
    # A merged idea names the idea its votes and followers went to (issue 13, merges).
    data["merged_into"] = idea.merged_into_id
    data["merged_into_url"] = (
        _absolute(url_for("ideas.show", idea_id=idea.merged_into_id))
        if idea.merged_into_id
        else None
    )
    data["history"] = [
        {"from": c.from_status, "to": c.to_status, "note": c.note, "at": _iso(c.created_at)}
        for c in roadmap.history(idea)
    ]
    return jsonify(data)
