"""Mail into the outbox: render a message and queue it in the request's own transaction.

Services call `queue_mail` (and `queue_reset_request`); `ideaboard.mail` delivers the
rows after the commit. Apart, so that services can queue mail and delivery can call back
into services (a reset request is made into its message only at delivery) without either
module importing the other lazily.

Headers never carry raw user text: control and line-break characters in a subject or a
display name become spaces (`header_text`) before `email.message.EmailMessage` sees them.
"""

from __future__ import annotations

import logging
import re

from flask import current_app, render_template
from flask_babel import get_locale

from .extensions import db
from .models import OutboxMessage, OutboxStatus
from .seclog import escape_value

log = logging.getLogger("ideaboard.mail")

#: An outbox row that asks for a password-reset message, rendered (and its token made)
#: only at delivery, so the request does the same work for known and unknown addresses.
RESET_REQUEST = "reset_request"
#: Where the session keeps the ids of rows queued in its transaction (read after commit).
QUEUED_KEY = "mail_queued"

_HEADER_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def header_text(value: str | None) -> str:
    """`value` made safe for one header line: control and line-break runs become a space."""
    return " ".join(_HEADER_UNSAFE.sub(" ", value or "").split())


def render_mail(template: str, **context) -> tuple[str, str]:
    context.setdefault("base_url", current_app.config["BASE_URL"])
    text = render_template(f"email/{template}.txt", **context)
    html = render_template(f"email/{template}.html", **context)
    return text, html


def _remember(row: OutboxMessage) -> None:
    db.session.info.setdefault(QUEUED_KEY, []).append(row.id)


def _locale() -> str:
    return str(get_locale() or current_app.config["BABEL_DEFAULT_LOCALE"])


def queue_mail(
    to_addr: str,
    subject: str,
    template: str,
    *,
    user_id: int | None = None,
    to_name: str = "",
    expires_at=None,
    **context,
) -> OutboxMessage:
    """Render templates/email/<template>.{txt,html} and add it to the outbox (flushes)."""
    text, html = render_mail(template, to_name=to_name, **context)
    row = OutboxMessage(
        kind=template,
        status=OutboxStatus.QUEUED,
        user_id=user_id,
        to_addr=to_addr,
        to_name=header_text(to_name)[:120],
        subject=header_text(subject)[:255],
        text_body=text,
        html_body=html,
        locale=_locale(),
        expires_at=expires_at,
        attempts=0,
    )
    db.session.add(row)
    db.session.flush()
    _remember(row)
    log.info(
        "mail queued id=%s to=%s subject=%s",
        row.id,
        escape_value(row.to_addr),
        escape_value(row.subject),
    )
    return row


def queue_reset_request(to_addr: str, user_id: int | None) -> OutboxMessage:
    """Queue a password-reset message to be made at delivery (for any address; flushes)."""
    row = OutboxMessage(
        kind=RESET_REQUEST,
        status=OutboxStatus.QUEUED,
        user_id=user_id,
        to_addr=to_addr,
        locale=_locale(),
        attempts=0,
    )
    db.session.add(row)
    db.session.flush()
    _remember(row)
    return row
