"""Mail: built safely, kept in an outbox, delivered after the response.

A service that wants to send mail calls `outbox.queue_mail`: the message is rendered (a
text part and an HTML part, from autoescaped templates in templates/email/) and written as
an `OutboxMessage` row in the request's own transaction, so it exists exactly when the
change it reports was committed. This module delivers those rows: after the commit, the
response registers a callback that delivers them once it has been sent
(`Response.call_on_close`): a slow or dead SMTP server never delays a page, never fails
it, and never makes a password-reset answer take longer for a known address than for an
unknown one. A delivery that fails leaves the row queued; `flask --app wsgi mail send`
retries every queued row (run it from cron or a systemd timer), and
`flask --app wsgi mail send --loop` is the production worker: it keeps delivering, sends
the daily digests, and backs off while the SMTP server is down.

Retries: when the server cannot be reached (refused, timed out, dropped the connection)
the run stops and the rows stay queued with no limit on tries: an outage never loses
mail, only an expiry can end such a row. When the server answers a message with a
temporary refusal (4xx), that row waits 1, 2, 4 ... minutes (at most MAX_BACKOFF) before
its next try, and fails for good after MAX_ATTEMPTS.

Notification rows ("notification", queued set-based by services/notification_mail.py)
are rendered at delivery like reset requests, in the member's language, with the RFC
8058 `List-Unsubscribe` and `List-Unsubscribe-Post` headers.

MAIL_URL chooses the transport: `smtp://host:port` (add `?starttls=true`, or use
`smtps://` for TLS from the start; `user:password@` for AUTH). Without it each message is
saved as an .eml file under MAIL_DIR (default: instance/mail, mode 0600) and the log says
that a mail was saved, for whom, with which subject and in which file; bodies, links and
tokens never go to the log.

Headers never carry raw user text: control and line-break characters in a subject or a
display name become spaces before `email.message.EmailMessage` sees them (it would also
refuse CR/LF), and the SMTP recipients come from the outbox row, never from headers.
"""

from __future__ import annotations

import contextvars
import logging
import os
import signal
import smtplib
import ssl
import threading
import time
from dataclasses import dataclass
from datetime import UTC, timedelta
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from functools import partial
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import click
from flask import Flask, Response, current_app, g, has_request_context
from flask_babel import force_locale
from sqlalchemy import event, func, or_, select, update

from .clock import now
from .extensions import db
from .models import OutboxMessage, OutboxStatus
from .outbox import QUEUED_KEY, RESET_REQUEST, header_text
from .seclog import escape_value
from .services import notification_mail
from .services.accounts import prepare_reset_message

log = logging.getLogger("ideaboard.mail")

#: How long one deliverer holds a row before another may try it.
LEASE = timedelta(minutes=2)
MAX_ATTEMPTS = 10
#: The wait after a message's first temporary refusal; it doubles with each attempt.
RETRY_BASE = timedelta(minutes=1)
MAX_BACKOFF = timedelta(hours=4)
#: The loop's longest pause while the SMTP server is unreachable.
MAX_WORKER_PAUSE = 300.0


def backoff(attempts: int) -> timedelta:
    """How long a row waits after its `attempts`-th temporary refusal."""
    return min(RETRY_BASE * (2 ** max(0, attempts - 1)), MAX_BACKOFF)


class ServerUnavailable(Exception):
    """The SMTP server could not be reached: nothing is wrong with the message."""


class PermanentFailure(Exception):
    """The server refused the message for good (5xx), or it cannot be built."""


# --- building and transports ---------------------------------------------------------


def _domain() -> str:
    return urlsplit(current_app.config["BASE_URL"]).hostname or "localhost"


def build_message(row: OutboxMessage) -> EmailMessage:
    """The RFC 5322 message for an outbox row: From from config, text and HTML parts."""
    msg = EmailMessage(policy=policy.SMTP)
    try:
        msg["From"] = header_text(current_app.config["MAIL_FROM"])
        name = header_text(row.to_name)
        msg["To"] = Address(display_name=name, addr_spec=row.to_addr) if name else row.to_addr
        msg["Subject"] = header_text(row.subject)
    except (ValueError, IndexError) as exc:  # an address the email package cannot write
        raise PermanentFailure(exc.__class__.__name__) from None
    msg["Date"] = format_datetime(now().replace(tzinfo=UTC))
    msg["Message-ID"] = make_msgid(domain=_domain())
    msg["Auto-Submitted"] = "auto-generated"
    # 8bit keeps a long link on one line in the raw message (a saved .eml read with `less`);
    # template lines are far below SMTP's 998-byte limit.
    if row.unsubscribe_url:
        # RFC 8058 one-click: the mail client POSTs "List-Unsubscribe=One-Click" there.
        msg["List-Unsubscribe"] = f"<{header_text(row.unsubscribe_url)}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(row.text_body, cte="8bit")
    msg.add_alternative(row.html_body, subtype="html", cte="quoted-printable")
    return msg


def _smtp_send(url: str, msg: EmailMessage, to_addrs: list[str]) -> None:
    parts = urlsplit(url)
    timeout = float(current_app.config["MAIL_TIMEOUT"])
    host = parts.hostname or "127.0.0.1"
    query = {k: v[-1].lower() for k, v in parse_qs(parts.query).items()}
    context = ssl.create_default_context()
    if parts.scheme == "smtps":
        server: smtplib.SMTP = smtplib.SMTP_SSL(
            host, parts.port or 465, timeout=timeout, context=context
        )
    elif parts.scheme == "smtp":
        server = smtplib.SMTP(host, parts.port or 25, timeout=timeout)
    else:
        raise PermanentFailure("MAIL_URL must start with smtp:// or smtps://")
    with server:
        if parts.scheme == "smtp" and query.get("starttls") in {"1", "true", "yes"}:
            server.starttls(context=context)
        if parts.username:
            server.login(unquote(parts.username), unquote(parts.password or ""))
        sender = parseaddr(current_app.config["MAIL_FROM"])[1]
        # Recipients from the row only: a header can never add one (no Bcc smuggling).
        server.send_message(msg, from_addr=sender, to_addrs=to_addrs)


def mail_dir() -> Path:
    configured = current_app.config.get("MAIL_DIR")
    return Path(configured) if configured else Path(current_app.instance_path) / "mail"


def _save_file(row: OutboxMessage, msg: EmailMessage) -> Path:
    folder = mail_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / f"{now():%Y%m%dT%H%M%S}-{row.id}.eml"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(bytes(msg))
    return path


def _transport(row: OutboxMessage, msg: EmailMessage) -> None:
    url = current_app.config.get("MAIL_URL")
    if not url:
        path = _save_file(row, msg)
        log.info(
            "mail saved id=%s to=%s subject=%s file=%s (MAIL_URL is not set)",
            row.id,
            escape_value(row.to_addr),
            escape_value(row.subject),
            escape_value(str(path)),
        )
        return
    try:
        _smtp_send(url, msg, [row.to_addr])
    except smtplib.SMTPConnectError as exc:  # the server greeted with a refusal
        raise ServerUnavailable(f"SMTP {exc.smtp_code}") from exc
    except smtplib.SMTPResponseException as exc:
        if 500 <= exc.smtp_code < 600:
            raise PermanentFailure(f"SMTP {exc.smtp_code}") from None
        raise
    except smtplib.SMTPRecipientsRefused:
        raise PermanentFailure("recipient refused") from None
    except OSError as exc:  # refused, timed out, disconnected: the server, not the message
        raise ServerUnavailable(exc.__class__.__name__) from exc
    log.info(
        "mail sent id=%s to=%s subject=%s",
        row.id,
        escape_value(row.to_addr),
        escape_value(row.subject),
    )


# --- delivery ------------------------------------------------------------------------


@dataclass
class DeliveryReport:
    sent: int = 0
    failed: int = 0  # attempts that failed this run (the row may stay queued for a retry)
    dropped: int = 0
    expired: int = 0
    unavailable: bool = False  # the run stopped: the SMTP server could not be reached
    more: bool = False  # the run hit its limit: more rows are waiting


def _finish(row: OutboxMessage, status: str) -> None:
    """Close a row: once it has left (or never will), its body and link are not kept."""
    row.status = status
    row.lease_until = None
    row.text_body = ""
    row.html_body = ""
    row.unsubscribe_url = None


def _claim(message_id: int) -> OutboxMessage | None:
    moment = now()
    claimed = db.session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.id == message_id,
            OutboxMessage.status == OutboxStatus.QUEUED,
            or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until < moment),
        )
        .values(lease_until=moment + LEASE, attempts=OutboxMessage.attempts + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        db.session.rollback()
        return None
    return db.session.get(OutboxMessage, message_id, populate_existing=True)


def _prepare(row: OutboxMessage) -> None:
    """Render a reset request (making its token), or drop it when there is no account."""
    with force_locale(row.locale or current_app.config["BABEL_DEFAULT_LOCALE"]):
        if not prepare_reset_message(row):
            _finish(row, OutboxStatus.DROPPED)


def _prepare_notification(row: OutboxMessage) -> None:
    """Render a notification row (once), or drop it when it no longer should go."""
    if row.html_body:
        return  # rendered on an earlier attempt
    if not notification_mail.prepare_notification_message(row):
        _finish(row, OutboxStatus.DROPPED)


def _deliver_one(message_id: int, report: DeliveryReport) -> None:
    row = _claim(message_id)
    if row is None:
        return
    if row.kind == RESET_REQUEST:
        _prepare(row)
    elif row.kind == notification_mail.NOTIFICATION:
        _prepare_notification(row)
    if row.status == OutboxStatus.QUEUED and row.expires_at and row.expires_at <= now():
        _finish(row, OutboxStatus.EXPIRED)
    if row.status != OutboxStatus.QUEUED:
        report.dropped += row.status == OutboxStatus.DROPPED
        report.expired += row.status == OutboxStatus.EXPIRED
        db.session.commit()
        return
    db.session.commit()  # a prepared message (and its token) is durable before it leaves
    try:
        _transport(row, build_message(row))
    except PermanentFailure as exc:
        report.failed += 1
        row.last_error = str(exc)[:255]
        _finish(row, OutboxStatus.FAILED)
        log.warning("mail failed for good id=%s reason=%s", row.id, escape_value(str(exc)))
    except ServerUnavailable as exc:
        # Not the message's fault: it stays queued with no limit on tries (an outage
        # loses nothing), free for the next run; this run stops (report.unavailable).
        report.failed += 1
        report.unavailable = True
        row.last_error = (exc.__cause__ or exc).__class__.__name__[:255]
        row.lease_until = None
        log.warning(
            "mail not delivered id=%s attempt=%s error=%s: SMTP server unreachable; "
            "it stays queued",
            row.id,
            row.attempts,
            escape_value(row.last_error),
        )
    except Exception as exc:  # noqa: BLE001 - a temporary refusal (4xx): retry later
        report.failed += 1
        row.last_error = exc.__class__.__name__[:255]
        row.lease_until = now() + backoff(row.attempts)
        if row.attempts >= MAX_ATTEMPTS:
            _finish(row, OutboxStatus.FAILED)
        log.warning(
            "mail not delivered id=%s attempt=%s error=%s; it stays queued for `flask mail send`",
            row.id,
            row.attempts,
            exc.__class__.__name__,
        )
    else:
        report.sent += 1
        row.sent_at = now()
        row.last_error = None
        _finish(row, OutboxStatus.SENT)
    db.session.commit()


def deliver_queued(
    ids: list[int] | tuple[int, ...] | None = None,
    limit: int = 500,
    stop: threading.Event | None = None,
):
    """Try to deliver queued messages (only `ids` when given; until `stop` is set);
    return a DeliveryReport."""
    report = DeliveryReport()
    moment = now()
    query = (
        select(OutboxMessage.id)
        .where(
            OutboxMessage.status == OutboxStatus.QUEUED,
            # Not held by another deliverer, nor waiting out its backoff.
            or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until < moment),
        )
        .order_by(OutboxMessage.id)
        .limit(limit)
    )
    if ids is not None:
        query = query.where(OutboxMessage.id.in_(list(ids)))
    candidates = db.session.scalars(query).all()
    db.session.rollback()  # end the read before each row takes its own write transaction
    report.more = len(candidates) == limit
    for message_id in candidates:
        _deliver_one(message_id, report)
        if report.unavailable:
            break  # the server is down: the rest wait for the next run, untouched
        if stop is not None and stop.is_set():
            break  # a worker asked to stop: after this message, not in the middle of one
    return report


def _deliver(app: Flask, ids: tuple[int, ...]) -> None:
    try:
        with app.app_context():
            deliver_queued(ids=ids)
    except Exception as exc:  # noqa: BLE001 - the response is gone; the rows stay queued
        log.error("mail delivery after the response failed: %s", exc.__class__.__name__)


def _deliver_after_response(app: Flask, ids: tuple[int, ...]) -> None:
    # A clean context: whatever request the server just finished stays out of it.
    contextvars.Context().run(_deliver, app, ids)


# --- wiring --------------------------------------------------------------------------


def _after_commit(session_) -> None:
    ids = session_.info.pop(QUEUED_KEY, None)
    if ids and has_request_context():
        g.setdefault("mail_committed", []).extend(ids)


def _after_rollback(session_) -> None:
    session_.info.pop(QUEUED_KEY, None)


@click.group("mail")
def mail_cli() -> None:
    """Deliver queued mail."""


def run_worker(
    stop: threading.Event,
    interval: float = 5.0,
    digest_interval: float = 60.0,
    limit: int = 500,
) -> None:
    """Deliver queued mail and send due digests until `stop` is set (the --loop worker).

    While the SMTP server is unreachable the pause doubles, up to MAX_WORKER_PAUSE; a
    failing database is logged and retried the same way, so the worker never dies of an
    outage. Rows are only ever claimed one at a time, so several workers may run.
    """
    pause = interval
    last_digest = float("-inf")
    while not stop.is_set():
        wait = interval
        try:
            # i13: pending events become notifications (and their mail) first, so what a
            # fan-out queues leaves in this same pass.
            from .notifications.wiring import run_pending

            fanned = run_pending()
            if fanned.events or fanned.failed:
                log.info(
                    "events fanned out count=%s notifications=%s failed=%s",
                    fanned.events,
                    fanned.notifications,
                    len(fanned.failed),
                )
            if time.monotonic() - last_digest >= digest_interval:
                last_digest = time.monotonic()
                try:
                    digests = notification_mail.run_digests()
                except Exception as exc:  # noqa: BLE001 - delivery still runs below
                    db.session.rollback()
                    log.error("digest pass failed error=%s", exc.__class__.__name__)
                else:
                    if digests:
                        log.info("digests queued count=%s", digests)
            report = deliver_queued(limit=limit, stop=stop)
        except Exception as exc:  # noqa: BLE001 - a database outage: keep the worker alive
            db.session.rollback()
            log.error("mail worker pass failed error=%s", exc.__class__.__name__)
            pause = min(pause * 2, MAX_WORKER_PAUSE)
            wait = pause
        else:
            if report.unavailable:
                pause = min(pause * 2, MAX_WORKER_PAUSE)
                wait = pause
            else:
                pause = interval
                wait = 0 if report.more else interval
        finally:
            db.session.remove()
        stop.wait(wait)


def _stop_on_signals(stop: threading.Event) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            signal.signal(sig, lambda *_: stop.set())
        except ValueError:  # not the main thread (tests): the caller stops it
            return


@mail_cli.command("send")
@click.option("--limit", default=500, show_default=True, help="At most this many messages.")
@click.option("--loop", is_flag=True, help="Keep delivering (the production worker).")
@click.option(
    "--interval", default=5.0, show_default=True, help="With --loop: seconds between passes."
)
def send_command(limit: int, loop: bool, interval: float) -> None:
    """Deliver every queued message (retries the ones that failed before)."""
    if loop:
        stop = threading.Event()
        _stop_on_signals(stop)
        click.echo(f"Delivering mail every {interval:g} s; digests are sent when due.")
        run_worker(stop, interval=interval, limit=limit)
        return
    # i13: first turn pending events into notifications (and their mail), so what a
    # fan-out queues leaves in this same pass (notifications/wiring.py).
    from .notifications.wiring import run_pending

    fanned = run_pending()
    if fanned.events or fanned.failed:
        click.echo(
            f"Fanned out {fanned.events} events into {fanned.notifications} notifications"
            f"{f'; {len(fanned.failed)} failed' if fanned.failed else ''}."
        )
    report = deliver_queued(limit=limit)
    left = db.session.scalar(
        select(func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.QUEUED)
    )
    click.echo(
        f"Sent {report.sent}, failed {report.failed}, dropped {report.dropped}, "
        f"expired {report.expired}; {left} still queued."
    )
    if not current_app.config.get("MAIL_URL") and report.sent:
        click.echo(f"MAIL_URL is not set: the messages are files in {mail_dir()}.")
    if report.failed:
        raise SystemExit(1)


@mail_cli.command("digest")
@click.option(
    "--all", "everyone", is_flag=True, help="Every member with waiting updates, due or not."
)
def digest_command(everyone: bool) -> None:
    """Queue the daily digests that are due (`mail send` delivers them)."""
    count = notification_mail.run_digests(force=everyone)
    click.echo(f"Queued {count} digest(s).")


def init_app(app: Flask) -> None:
    session_class = db.session.session_factory.class_
    for name, fn in (("after_commit", _after_commit), ("after_rollback", _after_rollback)):
        if not event.contains(session_class, name, fn):
            event.listen(session_class, name, fn)
    app.cli.add_command(mail_cli)

    @app.after_request
    def _deliver_queued_mail(resp: Response) -> Response:
        ids = g.pop("mail_committed", None)
        if ids:
            resp.call_on_close(partial(_deliver_after_response, app, tuple(ids)))
        return resp
