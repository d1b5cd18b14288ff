"""Notification mail: members' choices, instant mail, daily digests, one-click unsubscribe.

Choices are per kind of event (`notification_prefs`, no row: the kind's default), shown to
people in four groups (GROUPS): a group is what the settings page offers and what an
unsubscribe link turns off. Defaults follow Canny and Fider: what answers a customer
(a status change, an official response, a merge, staff touching their own idea) comes at
once; comments, the chatty kind, come in a daily digest.

`queue_for_event` runs inside the fan-out's transaction, after the notification rows
exist: ONE set-based INSERT ... SELECT queues an outbox row per instant recipient (a
reference to the notification, nothing rendered: 50,000 recipients cost one statement),
and one UPDATE marks those notifications mailed. The worker renders each row at delivery
in the member's language (`prepare_notification_message`), checking again that the member
still wants it and may still see the idea.

The digest (`send_digest`) claims a member's pending daily notifications with one UPDATE
... RETURNING (a second worker finds nothing left to claim) and queues one mail in the same
transaction: exactly once.

A member's language for mail is `mail_settings.locale`, chosen on the settings page
(prefilled with the language they use the site in); without a row, the site default.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import current_app, render_template
from flask_babel import force_locale, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ideaboard import permissions
from ideaboard.clock import now
from ideaboard.extensions import db
from ideaboard.i18n import STATUS_LABELS
from ideaboard.models import (
    Comment,
    Community,
    Delivery,
    Event,
    EventKind,
    Idea,
    MailSettings,
    Notification,
    NotificationPreference,
    OutboxMessage,
    OutboxStatus,
    Reply,
    Thread,
    User,
)
from ideaboard.outbox import header_text

from .accounts import mail_allowed, mail_allowed_sql
from .errors import ValidationError

#: An outbox row that tells one notification, rendered at delivery.
NOTIFICATION = "notification"
#: An outbox row holding a member's daily digest (rendered by the worker that claimed it).
DIGEST = "digest"
#: The unsubscribe scope of a digest: every group the member gets daily.
DAILY_SCOPE = "daily"
#: A digest goes once the member's oldest waiting notification is this old: at most one
#: digest a day, and nothing waits longer than a day plus the worker's interval.
DIGEST_EVERY = timedelta(hours=24)
#: Waiting notifications older than this never go into a digest (a member who turns
#: digests on again is not sent months of old news).
DIGEST_MAX_AGE = timedelta(days=7)
#: At most this many items are listed in one digest (the rest: "and N more").
DIGEST_MAX_ITEMS = 50

_SALT = "ideaboard.unsubscribe"


@dataclass(frozen=True)
class KindGroup:
    """Kinds of events a member chooses mail for together."""

    name: str  # the settings form's field and the unsubscribe link's scope
    kinds: tuple[str, ...]
    default: str
    label: Any
    hint: Any


GROUPS: tuple[KindGroup, ...] = (
    KindGroup(
        "status",
        (EventKind.STATUS_CHANGED, EventKind.OFFICIAL_RESPONSE),
        Delivery.INSTANT,
        _l("Status changes and official responses"),
        _l("An idea you follow moves on the roadmap, or staff answer it officially."),
    ),
    KindGroup(
        "comments",
        (EventKind.COMMENT,),
        Delivery.DAILY,
        _l("New comments"),
        _l("Someone comments on an idea you follow."),
    ),
    KindGroup(
        "merges",
        (EventKind.MERGED,),
        Delivery.INSTANT,
        _l("Merges"),
        _l("An idea you follow is merged into another one."),
    ),
    KindGroup(
        "my_ideas",
        (EventKind.IDEA_EDITED, EventKind.IDEA_HIDDEN),
        Delivery.INSTANT,
        _l("Changes staff made to my ideas"),
        _l("Staff edit or hide an idea you posted."),
    ),
    KindGroup(
        "communities",
        (EventKind.REPLY,),
        Delivery.DAILY,
        _l("Replies in community threads"),
        _l("Someone replies in a community thread you follow."),
    ),
)
GROUP_BY_NAME = {g.name: g for g in GROUPS}
GROUP_OF_KIND = {kind: g for g in GROUPS for kind in g.kinds}
#: The delivery of a kind for a member who never chose.
DEFAULTS = {kind: g.default for g in GROUPS for kind in g.kinds}
assert set(DEFAULTS) == set(EventKind.ALL), "every kind of event belongs to one group"

DELIVERY_LABELS = {
    Delivery.INSTANT: _l("Right away"),
    Delivery.DAILY: _l("In a daily digest"),
    Delivery.OFF: _l("Never"),
}


# --- the rules, each with its SQL twin ---------------------------------------------------


def delivery_for(prefs: dict[str, str], kind: str) -> str:
    """A member's delivery for `kind`, from their stored choices (kind -> delivery)."""
    return prefs.get(kind) or DEFAULTS.get(kind, Delivery.OFF)


def delivery_sql(user_id: ColumnElement, kind: ColumnElement) -> ColumnElement[str]:
    """delivery_for() in SQL, for a member id and a kind column of the outer query."""
    prefs = NotificationPreference.__table__
    # correlate_except: the member and kind columns come from whichever enclosing query
    # holds them, even two levels up (auto-correlation only looks one level up).
    chosen = (
        select(prefs.c.delivery)
        .where(prefs.c.user_id == user_id, prefs.c.kind == kind)
        .correlate_except(prefs)
        .scalar_subquery()
    )
    default = case(DEFAULTS, value=kind, else_=literal(Delivery.OFF))
    return func.coalesce(chosen, default)


# --- choices -----------------------------------------------------------------------------


def preferences_of(user: User) -> dict[str, str]:
    """The member's delivery per group (a group shows its first kind's delivery)."""
    rows = db.session.execute(
        select(NotificationPreference.kind, NotificationPreference.delivery).where(
            NotificationPreference.user_id == user.id
        )
    ).all()
    prefs = dict(rows)
    return {g.name: delivery_for(prefs, g.kinds[0]) for g in GROUPS}


def chosen_mail_locale(user: User) -> str | None:
    """The language the member chose for mail, if they did."""
    return db.session.scalar(select(MailSettings.locale).where(MailSettings.user_id == user.id))


def remember_mail_locale(user: User, locale: str) -> None:
    """Keep `locale` as the member's mail language unless they chose one (flushes).

    For the sign-up flow: a member who signs up in Russian gets Russian mail.
    """
    if locale not in current_app.config["LANGUAGES"]:
        return
    dialect = db.session.get_bind().dialect.name
    make = pg_insert if dialect == "postgresql" else sqlite_insert
    db.session.execute(
        make(MailSettings.__table__)
        .values(user_id=user.id, locale=locale)
        .on_conflict_do_nothing(index_elements=["user_id"])
    )


def mail_locale_of(user: User) -> str:
    """The language the member's mail is written in."""
    return chosen_mail_locale(user) or current_app.config["BABEL_DEFAULT_LOCALE"]


def _upsert(table, values: list[dict], keys: list[str], set_cols: list[str]) -> None:
    if not values:
        return
    dialect = db.session.get_bind().dialect.name
    make = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = make(table).values(values)
    stmt = stmt.on_conflict_do_update(
        index_elements=keys, set_={c: getattr(stmt.excluded, c) for c in set_cols}
    )
    db.session.execute(stmt)


def _set_deliveries(user_id: int, choices: dict[str, str]) -> None:
    values = [
        {"user_id": user_id, "kind": kind, "delivery": delivery}
        for name, delivery in choices.items()
        for kind in GROUP_BY_NAME[name].kinds
    ]
    _upsert(NotificationPreference.__table__, values, ["user_id", "kind"], ["delivery"])


def set_preferences(user: User, choices: dict[str, str | None], locale: str | None) -> None:
    """Store the member's delivery per group and the language of their mail (flushes).

    Every value is checked before anything is written: a bad one raises ValidationError
    naming its field, and nothing changes.
    """
    errors: dict[str, str] = {}
    clean: dict[str, str] = {}
    for group in GROUPS:
        value = choices.get(group.name)
        if value not in Delivery.ALL:
            errors[group.name] = _("Choose right away, daily digest or never.")
        else:
            clean[group.name] = value
    if locale not in current_app.config["LANGUAGES"]:
        errors["locale"] = _("Choose one of the languages offered.")
    if errors:
        raise ValidationError(errors)
    _set_deliveries(user.id, clean)
    _upsert(
        MailSettings.__table__, [{"user_id": user.id, "locale": locale}], ["user_id"], ["locale"]
    )
    db.session.flush()


# --- one-click unsubscribe ---------------------------------------------------------------


class InvalidToken(Exception):
    """An unsubscribe link that was not made here, was changed, or names no member."""


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=_SALT)


def unsubscribe_token(user_id: int, scope: str) -> str:
    """A signed token naming a member and a group (or DAILY_SCOPE): the link's credential."""
    return _serializer().dumps([int(user_id), scope])


def unsubscribe_url(user_id: int, scope: str) -> str:
    """The absolute one-click unsubscribe address (from BASE_URL, never the Host header)."""
    base = current_app.config["BASE_URL"].rstrip("/")
    return f"{base}/unsubscribe/{unsubscribe_token(user_id, scope)}"


def read_unsubscribe_token(token: str) -> tuple[User, str]:
    """The member and scope a token names; InvalidToken if it is not one of ours."""
    try:
        value = _serializer().loads(token)
    except (BadSignature, ValueError, TypeError):
        raise InvalidToken() from None
    if not (isinstance(value, list) and len(value) == 2):
        raise InvalidToken()
    user_id, scope = value
    if not isinstance(user_id, int) or (scope not in GROUP_BY_NAME and scope != DAILY_SCOPE):
        raise InvalidToken()
    user = db.session.get(User, user_id)
    if user is None:
        raise InvalidToken()
    return user, scope


def scope_label(scope: str) -> str:
    """What an unsubscribe link stops, for people."""
    if scope == DAILY_SCOPE:
        return _("the daily digest")
    return str(GROUP_BY_NAME[scope].label)


def unsubscribe(user: User, scope: str) -> None:
    """Turn off the mail a token's scope names (idempotent; flushes)."""
    if scope == DAILY_SCOPE:
        current = preferences_of(user)
        names = [name for name, delivery in current.items() if delivery == Delivery.DAILY]
    else:
        names = [scope]
    _set_deliveries(user.id, {name: Delivery.OFF for name in names})
    db.session.flush()


# --- instant mail ------------------------------------------------------------------------


def queue_for_event(event_id: int) -> int:
    """Queue instant mail for an event's notifications; return how many (flushes nothing
    else; call it in the fan-out's transaction, after the notification rows exist)."""
    n = Notification.__table__
    e = Event.__table__
    u = User.__table__
    ms = MailSettings.__table__
    out = OutboxMessage.__table__
    moment = now()
    source = (
        select(
            literal(NOTIFICATION),
            literal(OutboxStatus.QUEUED),
            n.c.user_id,
            u.c.email,
            u.c.display_name,
            literal(""),
            literal(""),
            literal(""),
            func.coalesce(ms.c.locale, literal(current_app.config["BABEL_DEFAULT_LOCALE"])),
            literal(0),
            n.c.id,
            literal(moment),
        )
        .select_from(
            n.join(e, e.c.id == n.c.event_id)
            .join(u, u.c.id == n.c.user_id)
            .outerjoin(ms, ms.c.user_id == n.c.user_id)
        )
        .where(
            n.c.event_id == event_id,
            n.c.mailed_at.is_(None),
            or_(e.c.actor_id.is_(None), e.c.actor_id != n.c.user_id),
            delivery_sql(n.c.user_id, e.c.kind) == Delivery.INSTANT,
            mail_allowed_sql(u),
        )
    )
    columns = [
        "kind",
        "status",
        "user_id",
        "to_addr",
        "to_name",
        "subject",
        "text_body",
        "html_body",
        "locale",
        "attempts",
        "notification_id",
        "created_at",
    ]
    # preserve_rowcount: SQLAlchemy 2.1 reports -1 for INSERT ... SELECT otherwise.
    stmt = insert(out).from_select(columns, source).execution_options(preserve_rowcount=True)
    queued = db.session.execute(stmt).rowcount or 0
    if queued:
        db.session.execute(
            update(n)
            .where(
                n.c.event_id == event_id,
                n.c.mailed_at.is_(None),
                exists().where(out.c.notification_id == n.c.id),
            )
            .values(mailed_at=moment)
        )
    return queued


# --- what a notification says --------------------------------------------------------------


@dataclass
class Item:
    """One notification put into words (in the locale in force)."""

    subject: str
    headline: str
    detail: str  # user text (a note, a comment's opening): shown as text, never markup
    url: str
    title: str
    link_label: str = ""  # the words of the link to `url` ("See the idea")


def _excerpt(text: str, limit: int = 400) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _idea_url(idea: Idea) -> str:
    from ideaboard.urls import slugify

    base = current_app.config["BASE_URL"].rstrip("/")
    return f"{base}/ideas/{idea.id}-{slugify(idea.title)}"


def _reply_url(community: Community, thread: Thread, reply: Reply | None) -> str:
    from .threads import reply_page_of

    base = current_app.config["BASE_URL"].rstrip("/")
    url = f"{base}/c/{community.slug}/t/{thread.id}"
    if reply is None:
        return url
    page = reply_page_of(thread, reply)
    return url + (f"?page={page}" if page > 1 else "") + f"#reply-{reply.id}"


def describe_thread_event(
    event: Event, thread: Thread, community: Community, actor: User | None
) -> Item:
    """What happened in a community thread (EventKind.THREAD), in words for a member."""
    try:
        data = json.loads(event.data or "{}")
    except ValueError:
        data = {}
    data = data if isinstance(data, dict) else {}
    reply = None
    if isinstance(data.get("reply_id"), int):
        reply = db.session.get(Reply, data["reply_id"])
        if reply is not None and (
            reply.thread_id != thread.id or not permissions.is_visible_post(reply)
        ):
            reply = None
    title = header_text(thread.title)
    name = header_text(actor.display_name) if actor is not None else _("Someone")
    headline = _(
        "%(name)s replied in “%(thread)s” (%(community)s).",
        name=name,
        thread=title,
        community=header_text(community.name),
    )
    subject = _("New reply in “%(thread)s”", thread=title)
    return Item(
        subject,
        headline,
        _excerpt(reply.body if reply is not None else ""),
        _reply_url(community, thread, reply),
        title,
        _("See the reply"),
    )


def describe(event: Event, idea: Idea, actor: User | None) -> Item:
    """What happened, in words for a member (the locale in force)."""
    try:
        data = json.loads(event.data or "{}")
    except ValueError:
        data = {}
    data = data if isinstance(data, dict) else {}
    title = header_text(idea.title)
    url = _idea_url(idea)
    detail = ""
    kind = event.kind
    if kind == EventKind.STATUS_CHANGED:
        # Not i18n.status_label: it caches per request context, and a worker renders
        # many languages in one context.
        to = str(data.get("to") or idea.status)
        status = str(STATUS_LABELS.get(to, to))
        headline = _("“%(title)s” is now %(status)s.", title=title, status=status)
        subject = _("“%(title)s” is now %(status)s", title=title, status=status)
        detail = str(data.get("note") or "")
    elif kind in (EventKind.OFFICIAL_RESPONSE, EventKind.COMMENT):
        comment = None
        if isinstance(data.get("comment_id"), int):
            comment = db.session.get(Comment, data["comment_id"])
        detail = comment.body if comment is not None and comment.idea_id == idea.id else ""
        if kind == EventKind.OFFICIAL_RESPONSE:
            headline = _("Staff answered “%(title)s”.", title=title)
            subject = _("Official response to “%(title)s”", title=title)
        else:
            name = header_text(actor.display_name) if actor is not None else _("Someone")
            headline = _("%(name)s commented on “%(title)s”.", name=name, title=title)
            subject = _("New comment on “%(title)s”", title=title)
    elif kind == EventKind.MERGED:
        into = db.session.get(Idea, data["into"]) if isinstance(data.get("into"), int) else None
        if into is not None and not into.is_deleted:
            url = _idea_url(into)
            into_title = header_text(into.title)
        else:
            into_title = _("another idea")
        headline = _("“%(title)s” was merged into “%(into)s”.", title=title, into=into_title)
        subject = _("“%(title)s” was merged", title=title)
    elif kind == EventKind.IDEA_EDITED:
        headline = _("Staff edited your idea “%(title)s”.", title=title)
        subject = _("Your idea “%(title)s” was edited", title=title)
    else:  # IDEA_HIDDEN
        headline = _("Staff hid your idea “%(title)s”.", title=title)
        subject = _("Your idea “%(title)s” was hidden", title=title)
        detail = str(data.get("reason") or "")
    return Item(subject, headline, _excerpt(detail), url, title, _("See the idea"))


def _render(template: str, **context) -> tuple[str, str]:
    context.setdefault("base_url", current_app.config["BASE_URL"].rstrip("/"))
    text = render_template(f"email/{template}.txt", **context)
    html = render_template(f"email/{template}.html", **context)
    return text, html


def prepare_notification_message(row: OutboxMessage) -> bool:
    """Render a queued notification row in its locale; False: nothing to send any more
    (the member turned that kind off, may no longer receive mail or see the idea)."""
    note = db.session.get(Notification, row.notification_id) if row.notification_id else None
    if note is None:
        return False
    user = db.session.get(User, note.user_id)
    event = db.session.get(Event, note.event_id)
    idea = thread = community = None
    if event is not None and event.thread_id is not None:
        thread = db.session.get(Thread, event.thread_id)
        community = db.session.get(Community, thread.community_id) if thread else None
        if thread is None or community is None:
            return False
    elif event is not None and event.idea_id is not None:
        idea = db.session.get(Idea, event.idea_id)
    if user is None or event is None or (idea is None and thread is None):
        return False
    if not mail_allowed(user):
        return False
    prefs = dict(
        db.session.execute(
            select(NotificationPreference.kind, NotificationPreference.delivery).where(
                NotificationPreference.user_id == user.id
            )
        ).all()
    )
    if delivery_for(prefs, event.kind) != Delivery.INSTANT:
        return False
    if thread is not None:
        if not permissions.can_be_notified_of_thread(user, thread):
            return False
    elif not permissions.can_view_idea(user, idea):
        return False
    actor = db.session.get(User, event.actor_id) if event.actor_id else None
    scope = GROUP_OF_KIND[event.kind].name
    with force_locale(row.locale or current_app.config["BABEL_DEFAULT_LOCALE"]):
        if thread is not None:
            item = describe_thread_event(event, thread, community, actor)
        else:
            item = describe(event, idea, actor)
        link = unsubscribe_url(user.id, scope)
        text, html = _render(
            "notification",
            item=item,
            to_name=user.display_name,
            unsubscribe_url=link,
            scope_label=scope_label(scope),
        )
        row.subject = header_text(item.subject)[:255]
    row.to_addr = user.email
    row.to_name = header_text(user.display_name)[:120]
    row.text_body, row.html_body, row.unsubscribe_url = text, html, link
    return True


# --- the daily digest ----------------------------------------------------------------------


def _pending_daily(n, e, moment):
    return and_(
        n.c.mailed_at.is_(None),
        n.c.created_at > moment - DIGEST_MAX_AGE,
        exists().where(
            e.c.id == n.c.event_id, delivery_sql(n.c.user_id, e.c.kind) == Delivery.DAILY
        ),
    )


def due_digests(force: bool = False, limit: int = 1000) -> list[int]:
    """Members whose digest is due: their oldest waiting daily notification is a day old
    (with `force`, everyone with one waiting)."""
    n = Notification.__table__
    e = Event.__table__
    u = User.__table__
    moment = now()
    query = (
        select(n.c.user_id)
        .join(u, u.c.id == n.c.user_id)
        .where(_pending_daily(n, e, moment), mail_allowed_sql(u))
        .group_by(n.c.user_id)
        .order_by(n.c.user_id)
        .limit(limit)
    )
    if not force:
        query = query.having(func.min(n.c.created_at) <= moment - DIGEST_EVERY)
    return list(db.session.scalars(query))


def send_digest(user_id: int) -> OutboxMessage | None:
    """Claim the member's waiting daily notifications and queue their digest (flushes).

    The claim is one UPDATE ... RETURNING: of two workers, the second claims nothing, so a
    notification is in exactly one digest. Returns the queued row, or None.
    """
    n = Notification.__table__
    e = Event.__table__
    moment = now()
    user = db.session.get(User, user_id)
    if user is None or not mail_allowed(user):
        return None
    claimed = list(
        db.session.scalars(
            update(n)
            .where(n.c.user_id == user_id, _pending_daily(n, e, moment))
            .values(mailed_at=moment)
            .returning(n.c.id)
        )
    )
    if not claimed:
        return None
    rows = db.session.execute(
        select(Event, Idea, Thread, Community)
        .join(Notification, Notification.event_id == Event.id)
        .outerjoin(Idea, Idea.id == Event.idea_id)
        .outerjoin(Thread, Thread.id == Event.thread_id)
        .outerjoin(Community, Community.id == Thread.community_id)
        .where(Notification.id.in_(claimed))
        .order_by(Event.created_at, Event.id)
    ).all()
    actor_ids = {ev.actor_id for ev, *_rest in rows if ev.actor_id}
    actors = (
        {a.id: a for a in db.session.scalars(select(User).where(User.id.in_(actor_ids)))}
        if actor_ids
        else {}
    )
    visible = [
        (ev, idea, thread, community)
        for ev, idea, thread, community in rows
        if (idea is not None and permissions.can_view_idea(user, idea))
        or (
            thread is not None
            and community is not None
            and permissions.can_be_notified_of_thread(user, thread)
        )
    ]
    if not visible:
        return None
    locale = mail_locale_of(user)
    with force_locale(locale):
        items = [
            describe_thread_event(ev, thread, community, actors.get(ev.actor_id))
            if thread is not None
            else describe(ev, idea, actors.get(ev.actor_id))
            for ev, idea, thread, community in visible
        ]
        count = len(items)
        if any(thread is not None for _ev, _idea, thread, _c in visible):
            headline = ngettext(
                "%(num)d update on what you follow", "%(num)d updates on what you follow", count
            )
        else:
            headline = ngettext(
                "%(num)d update on ideas you follow", "%(num)d updates on ideas you follow", count
            )
        link = unsubscribe_url(user.id, DAILY_SCOPE)
        text, html = _render(
            "digest",
            items=items[:DIGEST_MAX_ITEMS],
            more=max(0, count - DIGEST_MAX_ITEMS),
            headline=headline,
            to_name=user.display_name,
            unsubscribe_url=link,
        )
    row = OutboxMessage(
        kind=DIGEST,
        status=OutboxStatus.QUEUED,
        user_id=user.id,
        to_addr=user.email,
        to_name=header_text(user.display_name)[:120],
        subject=header_text(headline)[:255],
        text_body=text,
        html_body=html,
        locale=locale,
        attempts=0,
        unsubscribe_url=link,
    )
    db.session.add(row)
    db.session.flush()
    return row


def run_digests(force: bool = False) -> int:
    """Send every due digest, each in its own transaction; return how many were queued."""
    sent = 0
    members = due_digests(force=force)
    db.session.rollback()
    for user_id in members:
        try:
            row = send_digest(user_id)
            db.session.commit()
        except Exception:
            db.session.rollback()
            raise
        sent += row is not None
    return sent
