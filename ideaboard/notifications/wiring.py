"""The fan-out runs after the response, in the process that served the request, for the
events the request's transaction recorded; the worker (`flask mail send`, `flask
notifications fan-out`) catches whatever that missed. See services/notifications.py.
"""

from __future__ import annotations

import contextvars
import logging
from functools import partial

import click
from flask import Flask, Response, current_app, g, has_request_context
from sqlalchemy import event, func, select

from ideaboard.extensions import db
from ideaboard.models import Event
from ideaboard.services import notifications
from ideaboard.services.events import RECORDED_KEY

log = logging.getLogger("ideaboard.notifications")


def _after_commit(session_) -> None:
    ids = session_.info.pop(RECORDED_KEY, None)
    if ids and has_request_context():
        g.setdefault("events_committed", []).extend(ids)


def _after_rollback(session_) -> None:
    session_.info.pop(RECORDED_KEY, None)


def _fan_out(app: Flask, ids: tuple[int, ...]) -> None:
    try:
        with app.app_context():
            notifications.fan_out_pending(ids=list(ids))
    except Exception as exc:  # noqa: BLE001 - the response is gone; the worker retries
        log.error("fan-out after the response failed: %s", exc.__class__.__name__)


def _fan_out_after_response(app: Flask, ids: tuple[int, ...]) -> None:
    # A clean context: whatever request the server just finished stays out of it.
    contextvars.Context().run(_fan_out, app, ids)


def run_pending(limit: int = 1000) -> notifications.FanOutReport:
    """The worker's step: fan out every pending event, oldest first (mail send runs it
    before delivering, so mail queued by a fan-out leaves in the same pass)."""
    report = notifications.fan_out_pending(limit=limit)
    if report.failed:
        log.warning("fan-out failed for events %s; they stay pending", report.failed[:20])
    return report


@click.group("notifications")
def notifications_cli() -> None:
    """Notifications: turn recorded events into members' notifications."""


@notifications_cli.command("fan-out")
@click.option("--limit", default=1000, show_default=True, help="At most this many events.")
def fan_out_command(limit: int) -> None:
    """Fan out every event not fanned out yet (each exactly once)."""
    report = run_pending(limit)
    left = db.session.scalar(
        select(func.count()).select_from(Event).where(Event.fanned_out_at.is_(None))
    )
    click.echo(
        f"Fanned out {report.events} events into {report.notifications} notifications; "
        f"{len(report.failed)} failed; {left} still pending."
    )
    if report.failed:
        raise SystemExit(1)


def init_app(app: Flask) -> None:
    session_class = db.session.session_factory.class_
    for name, fn in (("after_commit", _after_commit), ("after_rollback", _after_rollback)):
        if not event.contains(session_class, name, fn):
            event.listen(session_class, name, fn)
    app.cli.add_command(notifications_cli)

    @app.after_request
    def _fan_out_recorded(resp: Response) -> Response:
        ids = g.pop("events_committed", None)
        if ids and current_app.config["NOTIFY_AFTER_RESPONSE"]:
            resp.call_on_close(partial(_fan_out_after_response, app, tuple(ids)))
        return resp
