"""Who may do what: each rule written once, as a pure predicate.

Views, services, templates (every `can_*`/`is_*` here is a Jinja global: see
perf/shared.py), the vote fast path and tests all ask these functions; none of them says
"staff" or "not deleted" on its own.

Two ways to keep a rule in one place when a query must decide it for speed:

- **Facts, then the predicate.** The query fetches the rows' facts (`fact_columns()`),
  `facts()` wraps them in an object the predicate reads like a model, and the predicate
  decides. A predicate that reads something the query did not fetch fails with
  AttributeError instead of guessing. The vote fast path does this on SQLite.
- **An SQL twin.** Where even that costs a round trip (the vote fast path's one-statement
  toggle on PostgreSQL), the rule's twin sits right below its predicate and is listed in
  TWINS. tests/test_permission_twins.py runs each twin and its predicate over every
  combination of role, ownership and row state the models allow (read from the models,
  so a new role, status or ban/lock column joins by itself) on SQLite and PostgreSQL,
  and names every case where they differ. Change a predicate, change its twin.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import ColumnElement, FromClause, Table, Text, and_, or_

from ideaboard import clock
from ideaboard.models import Board, Comment, Community, Idea, Role, Thread, User
from ideaboard.models.idea import Status
from ideaboard.models.user import STAFF_ROLES


def _member(user: Any) -> bool:
    return bool(user is not None and getattr(user, "is_authenticated", False))


def is_member(user: Any) -> bool:
    """Signed in, whatever the role (a visitor is not)."""
    return _member(user)


def is_member_sql(user: FromClause) -> ColumnElement[bool]:
    """is_member() of a users row (NULLs for a visitor, as from an outer join)."""
    return user.c.id.is_not(None)


def is_staff(user: Any) -> bool:
    """Staff and admins run the roadmap."""
    return _member(user) and user.role in STAFF_ROLES


def is_staff_sql(user: FromClause) -> ColumnElement[bool]:
    return user.c.role.in_(STAFF_ROLES)


def is_admin(user: Any) -> bool:
    return _member(user) and user.role == Role.ADMIN.value


def is_unconfirmed(user: Any) -> bool:
    """A signed-in member whose current email address is not confirmed yet: they use the
    board as usual, see a banner offering a new link, and get no notification mail."""
    return _member(user) and user.email_verified_at is None


def can_manage_site(user: Any) -> bool:
    """Admins run the admin area: boards, members' roles and access. A disabled account
    is signed out when disabled, so it never gets this far."""
    return is_admin(user) and getattr(user, "disabled_at", None) is None


def can_change_access(user: Any, other: User) -> bool:
    """Admins disable and enable other people's accounts, never their own."""
    return can_manage_site(user) and other.id != user.id


def can_change_role(user: Any, other: User) -> bool:
    """Admins set other people's roles; nobody changes their own (no self-escalation, and
    the last admin cannot demote themselves)."""
    return is_admin(user) and other.id != user.id


def is_exempt_from_limits(user: Any) -> bool:
    """Staff write without the per-member write limits (ideas, comments, votes, edits)."""
    return is_staff(user)


def is_exempt_from_limits_sql(user: FromClause) -> ColumnElement[bool]:
    return is_staff_sql(user)


def can_view_idea(user: Any, idea: Idea) -> bool:
    """Everyone sees live ideas; staff see deleted ones, and so does an author who may
    still restore theirs (marked deleted, with the Restore button)."""
    return not idea.is_deleted or is_staff(user) or can_restore_idea(user, idea)


def can_view_idea_sql(user: FromClause, idea: FromClause) -> ColumnElement[bool]:
    """can_view_idea() of a (users, ideas) row pair; the restore window is a bound
    cutoff (deleted after now - IDEA_RESTORE_DAYS), so both databases read it alike."""
    cutoff = clock.now() - restore_window()
    return or_(
        idea.c.deleted_at.is_(None),
        and_(is_member_sql(user), is_staff_sql(user)),
        and_(
            is_member_sql(user),
            idea.c.author_id == user.c.id,
            idea.c.deleted_by_id == idea.c.author_id,
            idea.c.deleted_at > cutoff,
        ),
    )


def can_be_notified(user: Any, idea: Idea) -> bool:
    """Who hears about an idea (its followers, told by the fan-out): members whose
    account is not disabled and who may still see the idea (can_view_idea)."""
    return (
        _member(user) and getattr(user, "disabled_at", None) is None and can_view_idea(user, idea)
    )


def can_be_notified_sql(user: FromClause, idea: FromClause) -> ColumnElement[bool]:
    return and_(is_member_sql(user), user.c.disabled_at.is_(None), can_view_idea_sql(user, idea))


def is_public_idea(idea: Idea, board: Board) -> bool:
    """What lists beyond an idea's own board show to anyone (the changelog, the Atom
    feeds, member profiles): what a visitor may view (can_view_idea: live ideas), on a
    board not archived. Nothing a viewer sees only by role or ownership is syndicated."""
    return can_view_idea(None, idea) and board.archived_at is None


def is_public_idea_sql(idea: FromClause, board: FromClause) -> ColumnElement[bool]:
    return and_(idea.c.deleted_at.is_(None), board.c.archived_at.is_(None))


def can_post_idea(user: Any) -> bool:
    return _member(user)


def can_edit_idea(user: Any, idea: Idea) -> bool:
    """Authors edit their own live ideas; staff edit any."""
    if not _member(user) or idea.is_deleted:
        return False
    return idea.author_id == user.id or is_staff(user)


def can_delete_idea(user: Any, idea: Idea) -> bool:
    return can_edit_idea(user, idea)


def restore_deadline(idea: Idea) -> datetime | None:
    """Until when the author may restore the idea they deleted (None: not theirs to
    restore, as when staff deleted it). IDEA_RESTORE_DAYS, default 30."""
    if not idea.is_deleted or idea.deleted_by_id is None or idea.deleted_by_id != idea.author_id:
        return None
    return idea.deleted_at + restore_window()


def restore_window() -> timedelta:
    """How long an author may restore an idea they deleted (IDEA_RESTORE_DAYS)."""
    days = current_app.config.get("IDEA_RESTORE_DAYS", 30) if has_app_context() else 30
    return timedelta(days=days)


def can_restore_idea(user: Any, idea: Idea) -> bool:
    """Staff restore any deleted idea; an author restores an idea they deleted themselves,
    for IDEA_RESTORE_DAYS (one staff deleted stays deleted for them)."""
    if not idea.is_deleted or not _member(user):
        return False
    if is_staff(user):
        return True
    if idea.author_id != user.id:
        return False
    deadline = restore_deadline(idea)
    return deadline is not None and clock.now() < deadline


#: Statuses on which votes are frozen: the decision is made, so the count is history
#: (as on Canny and Fider). A merged idea's votes were carried to the idea it went into.
VOTING_CLOSED_STATUSES = (Status.SHIPPED.value, Status.DECLINED.value, Status.MERGED.value)


def voting_closed(idea: Idea) -> bool:
    """Whether the idea's votes are frozen, for everyone: nobody votes or takes a vote back."""
    return idea.status in VOTING_CLOSED_STATUSES


def can_vote(user: Any, idea: Idea) -> bool:
    """Members vote on live ideas whose voting is not closed (see voting_closed)."""
    return _member(user) and not idea.is_deleted and not voting_closed(idea)


def can_vote_sql(user: FromClause, idea: FromClause) -> ColumnElement[bool]:
    return and_(
        is_member_sql(user),
        idea.c.deleted_at.is_(None),
        idea.c.status.not_in(VOTING_CLOSED_STATUSES),  # not voting_closed()
    )


def can_comment(user: Any, idea: Idea) -> bool:
    return _member(user) and not idea.is_deleted


def can_follow(user: Any, idea: Idea) -> bool:
    """Members follow (and unfollow) live ideas; a deleted idea takes no new followers."""
    return _member(user) and not idea.is_deleted


def can_edit_comment(user: Any, comment: Comment) -> bool:
    return _member(user) and comment.author_id == user.id


def can_post_official(user: Any, idea: Idea) -> bool:
    """Only staff answer for the company; a deleted idea gets no new answers."""
    return is_staff(user) and not idea.is_deleted


def can_mark_official(user: Any, comment: Comment, idea: Idea) -> bool:
    """Staff mark a staff member's comment as the official response, or take that back."""
    return can_post_official(user, idea) and is_staff(comment.author)


def can_change_status(user: Any, idea: Idea) -> bool:
    return is_staff(user) and not idea.is_deleted


def can_merge_idea(user: Any, idea: Idea) -> bool:
    """Staff merge live ideas into others (services/merges.py refuses, next to the field,
    an idea merged already and every unfit target)."""
    return is_staff(user) and not idea.is_deleted


def can_undo_merge(user: Any, into: Idea) -> bool:
    """Staff undo a merge from the history of the idea it went into."""
    return is_staff(user)


# --- communities -------------------------------------------------------------------
#
# What a person may do in a community depends on their standing there: whether they were
# appointed its moderator, joined it, had a first post approved, or are banned from it.
# standing() reads all of it in one statement the first time a request asks about that
# person, and keeps it on the user object (one per request); the predicates below read it.


@dataclass(frozen=True)
class Standing:
    """A member's standing in every community: ids moderated, joined, approved (first
    post approved or none needed), and bans by community (their expiry, None: none)."""

    moderates: frozenset[int] = frozenset()
    joined: frozenset[int] = frozenset()
    approved: frozenset[int] = frozenset()
    bans: tuple[tuple[int, datetime | None], ...] = ()

    def banned_until(self, community_id: int) -> tuple[bool, datetime | None]:
        """(banned now, until when: None for a ban without expiry)."""
        now = clock.now()
        found, until = False, None
        for cid, expires in self.bans:
            if cid != community_id or (expires is not None and expires <= now):
                continue
            if expires is None:
                return True, None
            found, until = True, max(until or expires, expires)
        return found, until


_NO_STANDING = Standing()
_STANDING_ATTR = "_ideaboard_standing"
#: Reads a member's Standing by user id: services/communities.py registers it (the read is
#: the domain layer's; the rules here stay pure).
_standing_loader: Callable[[int], Standing] | None = None


def use_standing_loader(loader: Callable[[int], Standing]) -> None:
    """Set how standing() reads a member's standing (services/communities.py does)."""
    global _standing_loader
    _standing_loader = loader


def standing(user: Any) -> Standing:
    """The user's standing in every community (read once per user object)."""
    if not _member(user):
        return _NO_STANDING
    cached = getattr(user, _STANDING_ATTR, None)
    if cached is None:
        if _standing_loader is None:
            raise RuntimeError("no standing loader: services.communities registers it")
        cached = _standing_loader(user.id)
        try:
            setattr(user, _STANDING_ATTR, cached)
        except AttributeError:  # a facts object (slots): ask again next time
            pass
    return cached


def forget_standing(user: Any) -> None:
    """Drop the kept standing (after a write that changes it in the same request)."""
    if user is not None and hasattr(user, _STANDING_ATTR):
        delattr(user, _STANDING_ATTR)


def _active(user: Any) -> bool:
    return _member(user) and getattr(user, "disabled_at", None) is None


def can_create_community(user: Any) -> bool:
    """Admins create communities (and archive them) from the admin area or the CLI."""
    return can_manage_site(user)


def can_manage_community(user: Any, community: Community) -> bool:
    """Admins and the community's owner edit its settings and appoint its moderators."""
    if not _active(user):
        return False
    return is_admin(user) or (community.owner_id is not None and community.owner_id == user.id)


def is_community_moderator(user: Any, community: Community) -> bool:
    """Appointed to moderate this community (staff moderate every one without it)."""
    return _active(user) and community.id in standing(user).moderates


def can_moderate(user: Any, community: Community) -> bool:
    """Pin, lock, hide, move, edit titles, ban, read the queue and the log, in this
    community: its moderators and owner, and staff and admins everywhere."""
    if not _active(user):
        return False
    return (
        is_staff(user)
        or is_community_moderator(user, community)
        or (community.owner_id is not None and community.owner_id == user.id)
    )


def is_banned_from(user: Any, community: Community) -> bool:
    """A ban in force: not lifted and not past its expiry."""
    return _member(user) and standing(user).banned_until(community.id)[0]


def is_in_community(user: Any, community: Community) -> bool:
    return _member(user) and community.id in standing(user).joined


def can_join_community(user: Any, community: Community) -> bool:
    """Members join (follow) open communities, and leave them, banned or not."""
    return _active(user) and not community.is_archived


def can_post_in(user: Any, community: Community) -> bool:
    """Start threads and reply: members not banned there, in a community not archived.
    Moderators and staff post even where a ban would stop others (they cannot be banned
    from what they run)."""
    if not _active(user) or community.is_archived:
        return False
    return can_moderate(user, community) or not is_banned_from(user, community)


def is_post_held(user: Any, community: Community) -> bool:
    """Whether the member's next post waits for a moderator: the community holds first
    posts, and this member has none approved there yet."""
    if not community.require_approval or can_moderate(user, community):
        return False
    return community.id not in standing(user).approved


def is_visible_post(post: Any) -> bool:
    """A thread or reply everyone sees: not hidden, not held for approval."""
    return post.deleted_at is None and post.held_at is None


def is_visible_post_sql(post: FromClause) -> ColumnElement[bool]:
    """is_visible_post() of a threads or replies row (models.community.VISIBLE_SQL)."""
    return and_(post.c.deleted_at.is_(None), post.c.held_at.is_(None))


def can_view_post(user: Any, post: Any, community: Community) -> bool:
    """Everyone sees visible threads and replies; the author sees their own hidden or
    held post (with the reason); the community's moderators see all of them."""
    if is_visible_post(post):
        return True
    if _member(user) and post.author_id == user.id:
        return True
    return can_moderate(user, community)


def can_reply(user: Any, thread: Thread, community: Community) -> bool:
    """Reply to a visible thread one may post in; a locked thread takes replies only from
    its moderators."""
    if not can_post_in(user, community) or not is_visible_post(thread):
        return False
    return not thread.is_locked or can_moderate(user, community)


def can_edit_post(user: Any, post: Any, community: Community) -> bool:
    """Authors edit their own visible posts while they may post in the community."""
    return (
        _member(user)
        and post.author_id == user.id
        and post.deleted_at is None
        and can_post_in(user, community)
    )


def can_be_notified_of_thread(user: Any, thread: Thread) -> bool:
    """Who hears of a thread's new replies (its active followers, told by the fan-out):
    members whose account is not disabled, while the thread is visible to everyone. A
    hidden or held thread tells nobody (it takes no replies either: can_reply)."""
    return _active(user) and is_visible_post(thread)


def can_be_notified_of_thread_sql(user: FromClause, thread: FromClause) -> ColumnElement[bool]:
    return and_(is_member_sql(user), user.c.disabled_at.is_(None), is_visible_post_sql(thread))


def is_public_thread(thread: Thread, community: Community) -> bool:
    """What lists beyond a thread's own community show to anyone (search results): a
    visible thread (not hidden, not held) in a community that is not archived. Nothing a
    viewer sees only by role or authorship is listed."""
    return is_visible_post(thread) and not community.is_archived


def is_public_thread_sql(thread: FromClause, community: FromClause) -> ColumnElement[bool]:
    return and_(is_visible_post_sql(thread), community.c.archived_at.is_(None))


def can_follow_thread(user: Any, thread: Thread) -> bool:
    return _member(user) and thread.deleted_at is None


def can_promote_thread(user: Any, thread: Thread, community: Community) -> bool:
    """Staff and the community's moderators turn a visible thread into an idea, once."""
    return can_moderate(user, community) and is_visible_post(thread) and thread.idea_id is None


def can_report(user: Any, author_id: int | None) -> bool:
    """Members report what others wrote (an idea, comment, thread or reply), once each."""
    return _active(user) and author_id != user.id


def can_view_comment(user: Any, comment: Comment) -> bool:
    """Everyone sees comments not hidden; a hidden one (after reports) shows only to its
    author (marked hidden, with the reason) and to staff."""
    if comment.hidden_at is None:
        return True
    return _member(user) and (comment.author_id == user.id or is_staff(user))


def can_report_comment(user: Any, comment: Comment) -> bool:
    """The "Report" link beside a comment (can_report about its author), for the shared
    comments fragment: one question per comment, asked where the fragment is rendered."""
    return can_report(user, comment.author_id)


def can_resolve_reports(user: Any, community: Community | None) -> bool:
    """Resolve the reports of an item, approve or reject a held post: the moderators of
    the item's community (threads and replies), staff everywhere (ideas and comments too,
    which belong to no community)."""
    if community is None:
        return can_view_moderation(user)
    return can_moderate(user, community)


def can_view_community_queue(user: Any, community: Community) -> bool:
    """A community's moderation queue: its moderators and owner, staff and admins."""
    return can_moderate(user, community)


def is_new_account(user: Any) -> bool:
    """An account younger than NEW_ACCOUNT_HOURS (default 24): its posts with links get a
    lower limit (NEW_ACCOUNT_LINK_LIMIT). Staff never count as new."""
    if not _member(user) or is_staff(user):
        return False
    hours = current_app.config.get("NEW_ACCOUNT_HOURS", 24) if has_app_context() else 24
    return user.created_at > clock.now() - timedelta(hours=hours)


def can_view_moderation(user: Any) -> bool:
    """The global moderation queue and audit log: staff and admins."""
    return is_staff(user) and getattr(user, "disabled_at", None) is None


def predicates() -> dict[str, Callable[..., bool]]:
    """Every rule above by name (the `can_*` and `is_*` functions, not their twins)."""
    return {
        name: value
        for name, value in globals().items()
        if name.startswith(("can_", "is_"))
        and not name.endswith("_sql")
        and callable(value)
        and getattr(value, "__module__", None) == __name__
    }


# --- SQL twins ---------------------------------------------------------------------


@dataclass(frozen=True)
class Twin:
    """A predicate and its SQL twin, over rows of `models` (the user first, if it has one)."""

    predicate: Callable[..., bool]
    sql: Callable[..., ColumnElement[bool]]
    models: tuple[type, ...]


#: Every predicate that has an SQL twin. tests/test_permission_twins.py checks each.
TWINS = (
    Twin(is_member, is_member_sql, (User,)),
    Twin(is_staff, is_staff_sql, (User,)),
    Twin(is_exempt_from_limits, is_exempt_from_limits_sql, (User,)),
    Twin(can_vote, can_vote_sql, (User, Idea)),
    Twin(is_public_idea, is_public_idea_sql, (Idea, Board)),
    Twin(can_view_idea, can_view_idea_sql, (User, Idea)),
    Twin(can_be_notified, can_be_notified_sql, (User, Idea)),
    Twin(is_visible_post, is_visible_post_sql, (Thread,)),
    Twin(can_be_notified_of_thread, can_be_notified_of_thread_sql, (User, Thread)),
    Twin(is_public_thread, is_public_thread_sql, (Thread, Community)),
)


# --- facts: rows fetched by SQL, read by the predicates ------------------------------


#: Columns no rule reads, left out of the facts a query fetches for the predicates: free
#: text, counters and scores, bookkeeping times, credentials. Every other column is a fact,
#: so a new state column (a ban, a lock) is fetched without anyone listing it; a predicate
#: that starts reading a column listed here fails with AttributeError on the fast path's
#: facts (and in tests/test_permission_twins.py) until it is taken off this list.
NOT_FACTS = {
    "ideas": {
        "title",
        "title_key",
        "body",
        "vote_count",
        "comment_count",
        "follower_count",
        "trending_score",
        "version",
    }
    | {"updated_at", "last_activity_at"},
    "users": {"email", "email_key", "display_name", "search_name", "password_hash"}
    | {"session_token", "activated_at"},
}


def fact_columns(table: Table) -> list:
    """The columns of `table` a predicate may read (all but NOT_FACTS and free text)."""
    skipped = NOT_FACTS.get(table.name, set())
    return [
        column
        for column in table.columns
        if column.name not in skipped and not isinstance(column.type, Text)
    ]


@functools.cache
def _facts_class(model: type) -> type:
    """A plain class holding `model`'s fact columns, with the model's properties (so
    `idea.is_deleted`, `user.is_authenticated` read as on the model) and nothing else."""
    names = tuple(column.key for column in fact_columns(model.__table__))
    properties = {
        name: value
        for klass in reversed(model.__mro__)
        for name, value in vars(klass).items()
        if isinstance(value, property)
    }
    return type(f"{model.__name__}Facts", (), {"__slots__": names, **properties})


def facts(model: type, values: Sequence) -> Any:
    """An object a predicate reads like a `model` instance, from the values of
    fact_columns(model.__table__), in that order (as a query selecting them returns)."""
    cls = _facts_class(model)
    obj = cls.__new__(cls)
    for name, value in zip(cls.__slots__, values, strict=True):
        setattr(obj, name, value)
    return obj
