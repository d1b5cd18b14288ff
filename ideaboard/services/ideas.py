"""Ideas: posting, editing, deleting, listing."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import Select, func, literal_column, or_, select, update
from sqlalchemy.orm import defer, joinedload, with_expression

from ideaboard.extensions import db
from ideaboard.models import (
    Board,
    EventKind,
    Idea,
    Kind,
    Merge,
    Status,
    StatusChange,
    User,
    Vote,
    utcnow,
)
from ideaboard.models.base import MAX_INT
from ideaboard.models.idea import title_key
from ideaboard.perf import memo
from ideaboard.permissions import (
    can_delete_idea,
    can_edit_idea,
    can_post_idea,
    can_restore_idea,
    can_view_idea,
)

from . import events, follows
from .errors import Conflict, DuplicateTitle, NotAllowed, NotFound, ValidationError
from .search import match_clause, query_terms, walks_sort_index
from .text import check_text, clean_line

TITLE_MIN, TITLE_MAX = 3, 150
BODY_MAX = 10_000
MAX_PER_PAGE = 100
MAX_PAGE = 10_000

# Trending = log10(1 + votes) + (created - EPOCH) / GRAVITY.
# An idea's score only changes when its votes do, so it can be stored and indexed; age
# "decays" it because newer ideas start higher: every GRAVITY seconds (one week) a new idea
# starts one point higher, so it needs ten times the votes to stay level with one a week
# younger.
TRENDING_EPOCH = datetime(2024, 1, 1)
TRENDING_GRAVITY = 7 * 24 * 3600

SORTS = ("trending", "top", "new")
#: The same title and text from the same author within this time is one idea (a double
#: submit or a resend), like Discourse's unique_posts_mins.
DUPLICATE_WINDOW = timedelta(minutes=5)


def age_bonus(created_at: datetime) -> float:
    """The trending score's head start of an idea made at `created_at`."""
    return (created_at - TRENDING_EPOCH).total_seconds() / TRENDING_GRAVITY


def trending_score(votes: int, created_at: datetime) -> float:
    """The stored trending score of an idea with `votes` votes made at `created_at`."""
    return math.log10(1 + max(votes, 0)) + age_bonus(created_at)


def trending_score_sql(votes, bonus):
    """trending_score() as an SQL expression over vote-count and age-bonus expressions.

    `log10` is built into PostgreSQL; on SQLite, perf/writergate.py registers Python's math.log10
    on every connection, so both give the same number as trending_score().
    """
    return func.log10(1 + votes) + bonus


#: Statuses a list's default view leaves out: settled ideas, one filter away. (Merged, when
#: it comes, is settled too.)
CLOSED = tuple(s.value for s in Status if s.value in ("shipped", "declined", "merged"))
#: What `status` may be besides one status: ideas still open, or every status.
STATUS_GROUPS = ("open", "all")
#: A list counts its ideas up to this many, inside its own query (bounded work on any
#: board); beyond it the count reads "100,000+". A count must be answered from an index
#: alone to be worth it: a search or a kind filter would read rows (at 100,000 ideas a
#: common word's count cost 17 ms on SQLite and 40 ms on PostgreSQL, where it also
#: scans the table: docs/performance.md, "Lists count their ideas"), so those lists
#: are counted only when their last page shows it for free.
COUNT_CAP = 100_000


@dataclass(frozen=True)
class IdeaQuery:
    """What a list of ideas asks for; every value already checked against its allowlist.

    `status` is one status, "open" (not shipped, declined or merged) or "all". Pages list
    open ideas unless asked otherwise; the JSON API keeps listing every status (its
    contract), so each caller says which is its default, and links leave it out.
    """

    sort: str = "trending"
    status: str = "all"
    board: Board | None = None
    kind: str | None = None
    q: str = ""
    page: int = 1
    per_page: int = 20
    default_status: str = field(default="all", compare=False)

    @classmethod
    def parse(
        cls, args, board: Board | None = None, per_page: int = 20, default_status: str = "all"
    ) -> IdeaQuery:
        """Build a query from request args, ignoring values outside the allowlists."""

        def _int(name: str, default: int, hi: int) -> int:
            try:
                value = int(args.get(name, default))
            except (TypeError, ValueError):
                return default
            return min(max(value, 1), hi)

        sort = args.get("sort", "trending")
        status = args.get("status") or default_status
        kind = args.get("kind") or None
        known = {s.value for s in Status} | set(STATUS_GROUPS)
        return cls(
            sort=sort if sort in SORTS else "trending",
            status=status if status in known else default_status,
            board=board,
            kind=kind if kind in {k.value for k in Kind} else None,
            q=(args.get("q") or "")[:200].replace("\x00", ""),
            page=_int("page", 1, MAX_PAGE),
            per_page=_int("per_page", per_page, MAX_PER_PAGE),
            default_status=default_status,
        )

    def args(self, **override) -> dict:
        """The query as URL arguments (for links to other pages and sorts)."""
        values = {
            "sort": self.sort if self.sort != "trending" else None,
            "status": self.status if self.status != self.default_status else None,
            "kind": self.kind,
            "q": self.q or None,
            "page": self.page if self.page > 1 else None,
        }
        values.update(override)
        return {k: v for k, v in values.items() if v not in (None, "")}

    @property
    def filtered(self) -> bool:
        """Whether the list is narrowed by more than its place (status, kind or, across
        boards, a board); a search is not a filter here."""
        return self.status != self.default_status or self.kind is not None

    def cleared(self) -> dict:
        """The URL arguments of this list without its filters (the sort and search kept)."""
        return self.args(status=None, kind=None, page=None)

    def unsearched(self) -> dict:
        """The URL arguments of this list without its search (the filters kept)."""
        return self.args(q=None, page=None)


@dataclass
class Page:
    items: list[Idea]
    page: int
    has_next: bool
    voted: set[int]
    #: How many ideas the list holds, counted up to COUNT_CAP + 1 (see `capped`); None
    #: when not counted (a search or a kind filter, before its last page).
    total: int | None = 0
    per_page: int = 20

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def capped(self) -> bool:
        """More ideas than were counted: shown as "100,000+"."""
        return self.total is not None and self.total > COUNT_CAP

    @property
    def shown_total(self) -> int:
        """The count to show: exact, or the cap when there are more."""
        return min(self.total or 0, COUNT_CAP)

    @property
    def pages(self) -> int:
        """How many pages the counted ideas fill (at least one)."""
        return max(1, -(-self.shown_total // self.per_page))


_ORDER = {
    "trending": (Idea.trending_score.desc(), Idea.id.desc()),
    "top": (Idea.vote_count.desc(), Idea.id.desc()),
    "new": (Idea.created_at.desc(), Idea.id.desc()),
}


def _conditions(query: IdeaQuery, *, walk: bool | None = None, count: bool = False) -> list:
    """The WHERE clauses of a list: live ideas matching its filters and search.

    `walk` None decides the search plan (services/search.py); the count passes False: it
    reads every match anyway, so it looks them up by the full-text index. Open ideas are
    "not closed" for a list walking its sort's index, and the open statuses by name for the
    count reading the status index (one range each).
    """
    where = [Idea.live()]
    if query.board is not None:
        where.append(Idea.board_id == query.board.id)
    if query.status == "open" and count:
        where.append(Idea.status.in_([s.value for s in Status if s.value not in CLOSED]))
    elif query.status == "open":
        where.append(Idea.status.not_in(CLOSED))
    elif query.status != "all":
        where.append(Idea.status == query.status)
    if query.kind:
        where.append(Idea.kind == query.kind)
    terms = query_terms(query.q)
    if terms:
        if walk is None:
            walk = walks_sort_index(terms)
        where.append(match_clause(terms, walk=walk))
    return where


def _list_select(query: IdeaQuery) -> Select:
    return select(Idea).where(*_conditions(query)).order_by(*_ORDER[query.sort])


def counted_in_sql(query: IdeaQuery) -> bool:
    """Whether the list's count comes from an index alone (no search, no kind filter)."""
    return not query.kind and not query_terms(query.q)


def _count_select(query: IdeaQuery) -> Select:
    """How many ideas the list holds, up to COUNT_CAP + 1, from the (board_id,) status,
    vote_count index alone.

    The statuses are named (IN, not NOT IN: one range each) and the ORDER BY follows
    that index, which is what steers SQLite to it (its planner does not see that a
    partial index covers `deleted_at IS NULL`, and would read the table: 35 ms instead
    of 10 at 100,000 ideas). PostgreSQL reads the same index only.
    """
    where = _conditions(query, walk=False, count=True)
    by_index = (Idea.status, Idea.vote_count)
    if query.board is not None:
        by_index = (Idea.board_id, *by_index)
    counted = (
        select(literal_column("1"))
        .select_from(Idea)
        .where(*where)
        .order_by(*by_index)
        .limit(COUNT_CAP + 1)
        .subquery("counted")
    )
    return select(func.count()).select_from(counted)


def with_author_and_board(stmt: Select, *, body: bool = True) -> Select:
    """Load each idea's author and board in the same statement (no query per row).

    Lists pass body=False: they never show it, and a body may be 10,000 characters.
    """
    stmt = stmt.options(joinedload(Idea.author), joinedload(Idea.board))
    return stmt if body else stmt.options(defer(Idea.body, raiseload=True))


def list_ideas(query: IdeaQuery, viewer: User | None = None) -> Page:
    """One page of live ideas, how many the list holds, and which the viewer voted for.

    The count rides in the page's own statement as an uncorrelated scalar subquery (one
    evaluation, no extra round trip); only a page past the end, which has no row to carry
    it, asks for it separately. A search or a kind filter is not counted in SQL (see
    COUNT_CAP): its total is known on its last page, else None.
    """
    stmt = with_author_and_board(_list_select(query), body=False)
    in_sql = counted_in_sql(query)
    # The count is the same for every viewer and page of the list: kept per content
    # version (perf/memo.py), so members' pages after the first do not count again.
    count_name = ("idea-count", query.board.id if query.board else None, query.status)
    known = memo.get(count_name) if in_sql else None
    if in_sql and known is None:
        total = _count_select(query).scalar_subquery().correlate(None).label("list_total")
        stmt = stmt.add_columns(total)
    offset = (query.page - 1) * query.per_page
    rows = db.session.execute(stmt.limit(query.per_page + 1).offset(offset)).all()
    items = [row[0] for row in rows[: query.per_page]]
    has_next = len(rows) > query.per_page
    if not in_sql:
        counted = None if has_next or (not rows and query.page > 1) else offset + len(items)
    elif known is not None:
        counted = known
    elif rows:
        counted = rows[0][1]
    elif query.page > 1:
        counted = db.session.scalar(_count_select(query))
    else:
        counted = 0
    if in_sql and known is None:
        memo.put(count_name, counted)
    return Page(
        items=items,
        page=query.page,
        has_next=has_next,
        voted=voted_ids(viewer, [i.id for i in items]),
        total=counted,
        per_page=query.per_page,
    )


def voted_ids(viewer: User | None, idea_ids: list[int]) -> set[int]:
    """The ids among `idea_ids` the viewer has voted for, in one query."""
    if not idea_ids or viewer is None or not viewer.is_authenticated:
        return set()
    return set(
        db.session.scalars(
            select(Vote.idea_id).where(Vote.user_id == viewer.id, Vote.idea_id.in_(idea_ids))
        )
    )


SIMILAR_LIMIT = 5
SIMILAR_MIN_CHARS = 3
SIMILAR_MIN_WORD = 3  # shorter words ("a", "to", "of") would match nearly everything


def similar_ideas(title: str, board: Board | None = None) -> list[Idea]:
    """Up to SIMILAR_LIMIT live ideas like a title being typed, most voted first: the
    ideas matching all of its words, then, to fill up, those matching any of them.

    The search's own machinery and visibility (live ideas, services/search.py), on one
    board or all; a title under SIMILAR_MIN_CHARS characters finds nothing.
    """
    title = clean_line(title or "")[:TITLE_MAX]
    if len(title) < SIMILAR_MIN_CHARS:
        return []
    terms = [t for t in query_terms(title) if len(t) >= SIMILAR_MIN_WORD]
    if not terms:
        return []
    found: list[Idea] = []
    for any_term in (False, True) if len(terms) > 1 else (False,):
        where = [Idea.live(), Idea.status != Status.MERGED.value]  # merged: vote on A
        if board is not None:
            where.append(Idea.board_id == board.id)
        if found:
            where.append(Idea.id.not_in([i.id for i in found]))
        walk = walks_sort_index(terms, any_term=any_term)
        where.append(match_clause(terms, walk=walk, any_term=any_term))
        stmt = (
            select(Idea)
            .options(defer(Idea.body, raiseload=True))
            .where(*where)
            .order_by(*_ORDER["top"])
            .limit(SIMILAR_LIMIT - len(found))
        )
        found += db.session.scalars(stmt)
        if len(found) >= SIMILAR_LIMIT:
            break
    return found


def get_idea(idea_id: int, viewer: User | None = None, *, related: bool = True) -> Idea:
    """The idea with its author and board, if the viewer may see it; else NotFound.

    Actions that need neither (a vote) pass related=False for the bare row.
    """
    stmt = select(Idea).where(Idea.id == idea_id)
    if related:
        # The page's merge notices ride in the same statement: the idea B went into (its
        # title), and how many ideas stand merged into this one (services/merges.py).
        merged_count = (
            select(func.count())
            .select_from(Merge)
            .where(Merge.into_id == Idea.id, Merge.undone_at.is_(None))
            .correlate(Idea)
            .scalar_subquery()
        )
        stmt = with_author_and_board(stmt).options(
            joinedload(Idea.merged_into).defer(Idea.body, raiseload=True),
            with_expression(Idea.merged_count, merged_count),
        )
    idea = db.session.scalar(stmt)
    if idea is None or not can_view_idea(viewer, idea):
        raise NotFound(_("This idea does not exist."))
    return idea


def _check_fields(
    title: str, body: str, kind: str, board: Board | None, keep_board_id: int | None = None
) -> tuple[str, str, dict[str, str]]:
    errors: dict[str, str] = {}
    title = clean_line(title)
    body = (body or "").strip()
    check_text(errors, "title", title, minimum=TITLE_MIN, maximum=TITLE_MAX, label=_("Title"))
    check_text(errors, "body", body, minimum=0, maximum=BODY_MAX, label=_("Description"))
    if kind not in {k.value for k in Kind}:
        errors["kind"] = _("Choose what kind of post this is.")
    if board is None:
        errors["board"] = _("Choose a board.")
    elif board.is_archived and board.id != keep_board_id:
        errors["board"] = _("This board is archived and takes no new ideas. Choose another.")
    return title, body, errors


def _post_digest(title: str, body: str) -> str:
    """What identifies a post's content: the SHA-256 of its title and text."""
    return hashlib.sha256(f"{title}\x00{body}".encode("utf-8", "surrogatepass")).hexdigest()


def _record_post(actor: User, digest: str, now: datetime) -> bool:
    """Record `digest` as the author's latest idea, unless it already is, from the last
    few minutes; True when recorded (a new post), False when it repeats the last one.

    Compare-and-set in one UPDATE: of two identical submits at once, one records the post,
    and the other's UPDATE (on PostgreSQL, after waiting for the first to commit; on
    SQLite, behind the single writer) finds it there and changes nothing. Whatever that
    second submit reads afterwards was committed by the first.
    """
    recorded = db.session.execute(
        update(User)
        .where(
            User.id == actor.id,
            or_(
                User.last_idea_digest.is_(None),
                User.last_idea_digest != digest,
                User.last_idea_at.is_(None),
                User.last_idea_at < now - DUPLICATE_WINDOW,
            ),
        )
        .values(last_idea_digest=digest, last_idea_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    return recorded == 1


def _recent_duplicate(actor: User, title: str, body: str, now: datetime) -> Idea | None:
    """The author's live idea with this exact title and text from the last few minutes."""
    return db.session.scalar(
        select(Idea)
        .where(
            Idea.author_id == actor.id,
            Idea.created_at >= now - DUPLICATE_WINDOW,
            Idea.title == title,
            Idea.body == body,
            Idea.live(),
        )
        .order_by(Idea.id.desc())
        .limit(1)
    )


def _board_still_open(board: Board) -> None:
    """Refuse a board archived since it was loaded. On PostgreSQL FOR SHARE makes an archive
    in progress finish first and is then judged on the row as it is; on SQLite this runs
    inside the write transaction, after every earlier write."""
    open_now = db.session.scalar(
        select(Board.id)
        .where(Board.id == board.id, Board.archived_at.is_(None))
        .with_for_update(read=True)
    )
    if open_now is None:
        raise ValidationError(
            {"board": _("This board is archived and takes no new ideas. Choose another.")}
        )


def duplicate_of(board_id: int, title: str, *, besides: int | None = None) -> Idea | None:
    """The live idea on the board whose title is `title`, in title_key()'s sense."""
    stmt = select(Idea).where(
        Idea.board_id == board_id, Idea.title_key == title_key(title), Idea.live()
    )
    if besides is not None:
        stmt = stmt.where(Idea.id != besides)
    return db.session.scalar(stmt.limit(1))


def _refuse_duplicate(existing: Idea) -> None:
    raise DuplicateTitle(
        {"title": _("An idea with this title is already on this board.")}, existing
    )


def duplicate_after_race(
    board_id: int | None, title: str, besides: int | None = None
) -> DuplicateTitle | None:
    """After a rolled-back write refused by the database (IntegrityError): the duplicate
    title that refused it, when two posts or edits of one title met at once; else None."""
    if board_id is None:
        return None
    existing = duplicate_of(board_id, clean_line(title), besides=besides)
    if existing is None:
        return None
    return DuplicateTitle(
        {"title": _("An idea with this title is already on this board.")}, existing
    )


def create_idea(actor: User, board: Board | None, kind: str, title: str, body: str) -> Idea:
    """Post an idea; it starts at `heard` with its first history entry and its author's
    vote (as on Canny and Fider: you want what you asked for), counted."""
    if not can_post_idea(actor):
        raise NotAllowed(_("Sign in to post an idea."))
    title, body, errors = _check_fields(title, body, kind, board)
    if errors:
        raise ValidationError(errors)
    now = utcnow()
    # The UPDATE records this post as the author's latest, or finds it recorded a moment
    # ago: a double submit, whose first submit has committed its idea by then. The read
    # comes after it, so a double submit, like a post identical to an older one from the
    # window (A, B, then A again), lands on the existing idea; one deleted since is not.
    _record_post(actor, _post_digest(title, body), now)
    _board_still_open(board)
    existing = _recent_duplicate(actor, title, body, now)
    if existing is not None:
        return existing
    same = duplicate_of(board.id, title)
    if same is not None:
        _refuse_duplicate(same)
    return _insert_idea(actor, board, kind, title, body, now)


def create_idea_for(author: User, board: Board | None, kind: str, title: str, body: str) -> Idea:
    """Post an idea in `author`'s name for someone else (a thread promoted by staff or a
    community's moderator, who checked their own rule): the same checks of the fields,
    board and title as create_idea, and the same start (heard, the author's vote and
    follow); no double-submit window, which is the author's own posting."""
    title, body, errors = _check_fields(title, body, kind, board)
    if errors:
        raise ValidationError(errors)
    _board_still_open(board)
    same = duplicate_of(board.id, title)
    if same is not None:
        _refuse_duplicate(same)
    return _insert_idea(author, board, kind, title, body, utcnow())


def _insert_idea(actor: User, board: Board, kind: str, title: str, body: str, now) -> Idea:
    """A new idea at heard: its first history entry, its author's vote and follow."""
    idea = Idea(
        board_id=board.id,
        author_id=actor.id,
        kind=kind,
        title=title,
        title_key=title_key(title),
        body=body,
        status=Status.HEARD.value,
        created_at=now,
        updated_at=now,
        last_activity_at=now,
        vote_count=1,
        trending_score=trending_score(1, now),
    )
    db.session.add(idea)
    db.session.flush()
    db.session.add(
        StatusChange(
            idea_id=idea.id, from_status=None, to_status=Status.HEARD.value, by_id=actor.id
        )
    )
    db.session.add(Vote(idea_id=idea.id, user_id=actor.id, created_at=now))
    follows.auto_follow(actor, idea)
    return idea


def update_idea(
    actor: User,
    idea: Idea,
    *,
    title: str,
    body: str,
    kind: str,
    board: Board | None,
    version: int | None,
) -> Idea:
    """Edit an idea, refusing an edit made from an older version of it (409)."""
    if not can_edit_idea(actor, idea):
        raise NotAllowed(_("You can only edit your own ideas."))
    # An idea already on an archived board may stay there; none may move onto one.
    title, body, errors = _check_fields(title, body, kind, board, keep_board_id=idea.board_id)
    if errors:
        raise ValidationError(errors)
    if not version or not 0 < version <= MAX_INT:
        version = 0  # none, or one no idea can have: a stale edit (409)
    same = duplicate_of(board.id, title, besides=idea.id)
    if same is not None:
        _refuse_duplicate(same)
    now = utcnow()
    # Compare-and-set on the version: two editors cannot both win.
    result = db.session.execute(
        update(Idea)
        .where(Idea.id == idea.id, Idea.version == version)
        .values(
            title=title,
            title_key=title_key(title),
            body=body,
            kind=kind,
            board_id=board.id,
            updated_at=now,
            version=Idea.version + 1,
        )
        .returning(Idea.version)
        .execution_options(synchronize_session=False)
    ).first()
    if result is None:
        db.session.refresh(idea)
        raise Conflict(_("Someone else changed this idea while you were editing it."))
    db.session.refresh(idea)
    if actor.id != idea.author_id:  # staff edited a member's idea: its author hears of it
        events.record(EventKind.IDEA_EDITED, idea, actor)
    return idea


REASON_MAX = 500


def delete_idea(actor: User, idea: Idea, reason: str = "") -> None:
    """Hide an idea from everyone but staff, keeping who, when and why; staff can restore it."""
    if not can_delete_idea(actor, idea):
        raise NotAllowed(_("You can only delete your own ideas."))
    errors: dict[str, str] = {}
    reason = clean_line(reason)
    check_text(errors, "reason", reason, minimum=0, maximum=REASON_MAX, label=_("Reason"))
    if errors:
        raise ValidationError(errors)
    idea.soft_delete(actor.id, reason)
    if actor.id != idea.author_id:  # staff hid a member's idea: its author hears why
        events.record(EventKind.IDEA_HIDDEN, idea, actor, reason=reason)


def restore_idea(actor: User, idea: Idea) -> None:
    """Bring a deleted idea back, unless a live idea on its board took its title since."""
    if not can_restore_idea(actor, idea):
        raise NotAllowed(_("This idea can no longer be restored."))
    if duplicate_of(idea.board_id, idea.title, besides=idea.id) is not None:
        raise Conflict(
            _("Another idea on this board has this title now, so this one cannot come back.")
        )
    idea.restore()


def most_active(limit: int = 8) -> list[Idea]:
    """Ideas with the latest activity, for the home page."""
    stmt = (
        with_author_and_board(select(Idea), body=False)
        .where(Idea.live())
        .order_by(Idea.last_activity_at.desc(), Idea.id.desc())
        .limit(limit)
    )
    return list(db.session.scalars(stmt))
