"""Domain rules: posting, voting, commenting, status changes, accounts."""

import pytest
from sqlalchemy import func, select

from ideaboard.extensions import db
from ideaboard.models import Comment, StatusChange, User, Vote
from ideaboard.services import accounts, comments, ideas, roadmap, votes
from ideaboard.services.errors import Conflict, NotAllowed, ValidationError

from .factories import PASSWORD, general_board, make_idea, make_user, reload

pytestmark = pytest.mark.usefixtures("app")


def _vote_rows(idea):
    return db.session.scalar(select(func.count()).select_from(Vote).where(Vote.idea_id == idea.id))


def test_new_idea_starts_heard_with_history():
    """A posted idea starts at heard, with one history entry, no comments and one vote: its
    author's (issue 12: a new idea starts with its author's vote)."""
    idea = make_idea(title="  Offline   mode  ")
    assert idea.title == "Offline mode"
    assert idea.status == "heard" and idea.vote_count == 1 == _vote_rows(idea)
    assert idea.comment_count == 0
    assert db.session.scalars(select(Vote.user_id).where(Vote.idea_id == idea.id)).all() == [
        idea.author_id
    ]
    assert [(c.from_status, c.to_status) for c in roadmap.history(idea)] == [(None, "heard")]


@pytest.mark.parametrize(
    "title, body, field",
    [
        ("ab", "", "title"),
        ("x" * 151, "", "title"),
        ("Fine title", "x" * 10_001, "body"),
        ("Nul\x00byte", "", "title"),
        ("Fine title", "bell\x07", "body"),
    ],
)
def test_idea_fields_are_checked(title, body, field):
    """Titles must be 3–150 characters, bodies ≤ 10,000, and free of control characters."""
    with pytest.raises(ValidationError) as err:
        ideas.create_idea(make_user(), general_board(), "idea", title, body)
    assert field in err.value.errors


def test_unknown_kind_and_missing_board_are_refused():
    """Kind must be idea, problem or product, and a board is required."""
    with pytest.raises(ValidationError) as err:
        ideas.create_idea(make_user(), None, "rumour", "A good title", "")
    assert set(err.value.errors) == {"kind", "board"}


def test_vote_toggles_and_count_equals_rows():
    """Voting twice takes the vote back; the stored count always equals the rows."""
    idea, member = make_idea(), make_user()
    first = votes.toggle_vote(member, idea)
    assert first.voted and first.count == 2 == _vote_rows(idea)  # and the author's
    second = votes.toggle_vote(member, idea)
    assert not second.voted and second.count == 1 == _vote_rows(idea)
    db.session.commit()
    assert reload(idea).vote_count == 1
    assert votes.count_mismatches() == []


def test_votes_raise_trending_score():
    """Votes lift an idea's trending score; the formula is log10(1+votes) plus an age bonus."""
    idea = make_idea()  # one vote, its author's
    votes.toggle_vote(db.session.get(User, idea.author_id), idea)  # taken back: none
    db.session.commit()
    before = reload(idea).trending_score
    for _ in range(9):
        votes.toggle_vote(make_user(), idea)
    db.session.commit()
    after = reload(idea).trending_score
    assert after == pytest.approx(before + 1.0)  # log10(10) - log10(1)


def test_newer_idea_outranks_older_with_same_votes():
    """With equal votes a newer idea trends higher; ten times the votes offset a week."""
    from datetime import datetime, timedelta

    now = datetime(2026, 6, 1)
    assert ideas.trending_score(5, now) > ideas.trending_score(5, now - timedelta(days=1))
    week_old_ten_x = ideas.trending_score(99, now - timedelta(days=7))
    assert week_old_ten_x == pytest.approx(ideas.trending_score(9, now))


def test_anonymous_cannot_vote():
    """A visitor's vote is refused by the domain layer itself."""
    from flask_login import AnonymousUserMixin

    with pytest.raises(NotAllowed):
        votes.toggle_vote(AnonymousUserMixin(), make_idea())


def test_comment_counts_and_official_response():
    """Comments bump the count; only staff post official responses, shown first."""
    idea, member, staff = make_idea(), make_user(), make_user("staff")
    comments.add_comment(member, idea, "First!")
    db.session.commit()
    with pytest.raises(NotAllowed):
        comments.add_comment(member, idea, "I speak for the company", official=True)
    db.session.rollback()
    comments.add_comment(staff, idea, "We hear you.", official=True)
    db.session.commit()
    assert reload(idea).comment_count == 2
    listed, more = comments.list_comments(reload(idea))
    assert [c.body for c in listed] == ["We hear you.", "First!"] and not more


def test_empty_comment_is_refused():
    """A blank comment is a validation error, not a row."""
    with pytest.raises(ValidationError):
        comments.add_comment(make_user(), make_idea(), "   ")
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Comment)) == 0


def test_only_staff_comment_can_be_official():
    """Staff can mark a staff comment official, never a member's."""
    idea, staff, member = make_idea(), make_user("staff"), make_user()
    theirs = comments.add_comment(member, idea, "mine")
    ours = comments.add_comment(staff, idea, "ours")
    with pytest.raises(NotAllowed):
        comments.set_official(staff, theirs, True)
    with pytest.raises(NotAllowed):
        comments.set_official(member, ours, True)
    assert comments.set_official(staff, ours, True).is_official


def test_status_change_is_recorded_with_note():
    """Staff move an idea; each change is kept with its note, in order."""
    idea, staff = make_idea(), make_user("staff")
    roadmap.change_status(staff, idea, "planned", "Next quarter")
    roadmap.change_status(staff, idea, "shipped")
    db.session.commit()
    history = roadmap.history(reload(idea))
    assert [(h.from_status, h.to_status, h.note) for h in history] == [
        (None, "heard", ""),
        ("heard", "planned", "Next quarter"),
        ("planned", "shipped", ""),
    ]


@pytest.mark.parametrize("role", ["member", "moderator"])
def test_non_staff_cannot_change_status(role):
    """Members and moderators cannot move ideas, even by calling the service."""
    idea = make_idea()
    with pytest.raises(NotAllowed):
        roadmap.change_status(make_user(role), idea, "planned")
    assert db.session.scalar(select(func.count()).select_from(StatusChange)) == 1


def test_status_must_be_known_and_different():
    """An unknown status or the current one is a validation error."""
    idea, staff = make_idea(), make_user("staff")
    for bad in ("merged", "heard"):
        with pytest.raises(ValidationError):
            roadmap.change_status(staff, idea, bad)


def test_stale_edit_is_a_conflict_and_newer_text_survives():
    """Two editors start from version 1; the second save is refused and the first stands."""
    author = make_user()
    idea = make_idea(author, title="Original")
    ideas.update_idea(
        author, idea, title="First edit", body="", kind="idea", board=general_board(), version=1
    )
    db.session.commit()
    with pytest.raises(Conflict):
        ideas.update_idea(
            author,
            idea,
            title="Stale edit",
            body="",
            kind="idea",
            board=general_board(),
            version=1,
        )
    db.session.rollback()
    assert reload(idea).title == "First edit"


def test_other_member_cannot_edit_or_delete():
    """Another member's edit or delete is refused in the domain layer."""
    idea = make_idea()
    other = make_user()
    with pytest.raises(NotAllowed):
        ideas.update_idea(
            other, idea, title="Mine now", body="", kind="idea", board=general_board(), version=1
        )
    with pytest.raises(NotAllowed):
        ideas.delete_idea(other, idea)


def test_soft_delete_and_restore():
    """Deleting hides the idea from lists; staff restore it intact."""
    author, staff = make_user(), make_user("staff")
    idea = make_idea(author, title="Hide me")
    ideas.delete_idea(author, idea)
    db.session.commit()
    listed = ideas.list_ideas(ideas.IdeaQuery()).items
    assert idea.id not in [i.id for i in listed]
    ideas.restore_idea(staff, reload(idea))
    db.session.commit()
    assert idea.id in [i.id for i in ideas.list_ideas(ideas.IdeaQuery()).items]


def test_deleting_keeps_who_when_and_why_until_restored():
    """A deleted idea records who deleted it, when and why; restoring clears all three."""
    author, staff = make_user(), make_user("staff")
    idea = make_idea(author)
    ideas.delete_idea(staff, idea, reason="  Duplicate of the dark-mode idea ")
    db.session.commit()
    gone = reload(idea)
    assert gone.is_deleted and gone.deleted_at is not None
    assert (gone.deleted_by_id, gone.deleted_reason) == (
        staff.id,
        "Duplicate of the dark-mode idea",
    )
    ideas.restore_idea(staff, gone)
    db.session.commit()
    back = reload(idea)
    assert (back.deleted_at, back.deleted_by_id, back.deleted_reason) == (None, None, None)


def test_deletion_reason_is_checked_like_other_text():
    """A reason with control characters, or too long, is refused and nothing is hidden."""
    author = make_user()
    idea = make_idea(author)
    for reason in ("bad\x07bell", "x" * (ideas.REASON_MAX + 1)):
        with pytest.raises(ValidationError) as err:
            ideas.delete_idea(author, idea, reason=reason)
        assert "reason" in err.value.errors
    assert not reload(idea).is_deleted


def test_live_filter_is_the_partial_indexes_condition():
    """The live-rows filter compiles to the very condition of every partial index over
    ideas, so the planner can use those indexes for public lists."""
    from ideaboard.models import Idea
    from ideaboard.models.base import LIVE_SQL

    assert str(Idea.live().compile()) == f"ideas.{LIVE_SQL}"
    partial = [
        ix for ix in Idea.__table__.indexes if ix.dialect_options["postgresql"]["where"] is not None
    ]
    assert len(partial) >= 9
    for ix in partial:
        assert str(ix.dialect_options["postgresql"]["where"]) == LIVE_SQL
        assert str(ix.dialect_options["sqlite"]["where"]) == LIVE_SQL


def test_list_sorts_filters_and_paginates():
    """Top sorts by votes, filters narrow by status and kind, pages do not overlap."""
    a, b, c = (
        make_idea(title="Alpha"),
        make_idea(title="Bravo", kind="problem"),
        make_idea(title="Charlie"),
    )
    for _ in range(2):
        votes.toggle_vote(make_user(), b)
    votes.toggle_vote(make_user(), c)
    roadmap.change_status(make_user("staff"), c, "planned")
    db.session.commit()
    top = ideas.list_ideas(ideas.IdeaQuery(sort="top")).items
    assert [i.title for i in top] == ["Bravo", "Charlie", "Alpha"]
    assert [i.title for i in ideas.list_ideas(ideas.IdeaQuery(status="planned")).items] == [
        "Charlie"
    ]
    assert [i.title for i in ideas.list_ideas(ideas.IdeaQuery(kind="problem")).items] == ["Bravo"]
    new = ideas.list_ideas(ideas.IdeaQuery(sort="new", per_page=2))
    assert [i.title for i in new.items] == ["Charlie", "Bravo"] and new.has_next
    page2 = ideas.list_ideas(ideas.IdeaQuery(sort="new", per_page=2, page=2))
    assert [i.title for i in page2.items] == ["Alpha"] and not page2.has_next
    assert a


def test_query_parse_clamps_and_ignores_unknown_values():
    """Unknown sorts and statuses fall back; page and per_page are clamped integers."""
    q = ideas.IdeaQuery.parse(
        {"sort": "id);--", "status": "' OR 1=1--", "page": "-5", "per_page": str(10**9)}
    )
    assert (q.sort, q.status, q.page, q.per_page) == ("trending", "all", 1, 100)


def test_search_matches_words_any_case_and_prefix():
    """Search finds ideas by words of title or body, any case, prefixes included."""
    make_idea(title="Dark mode for the app", body="Night time reading")
    make_idea(title="Export to CSV", body="Finance wants SPREADSHEETS")
    make_idea(title="Тёмная тема", body="Для работы ночью")

    def found(q):
        return sorted(i.title for i in ideas.list_ideas(ideas.IdeaQuery(q=q)).items)

    assert found("dark") == ["Dark mode for the app"]
    assert found("NIGHT read") == ["Dark mode for the app"]
    assert found("spreadsheet") == ["Export to CSV"]
    assert found("тёмн") == ["Тёмная тема"]
    assert found("ночью") == ["Тёмная тема"]
    assert found("dark csv") == []
    assert found("'\" OR 1=1 -- *") == []


def test_search_sees_edits():
    """After an edit the idea is found by its new words, not its old ones."""
    author = make_user()
    idea = make_idea(author, title="Kettle support")
    ideas.update_idea(
        author, idea, title="Teapot support", body="", kind="idea", board=general_board(), version=1
    )
    db.session.commit()
    assert [i.id for i in ideas.list_ideas(ideas.IdeaQuery(q="teapot")).items] == [idea.id]
    assert ideas.list_ideas(ideas.IdeaQuery(q="kettle")).items == []


def test_register_rules():
    """Emails are unique case-insensitively; weak passwords and bad names are refused."""
    make_user(email="Ann@Example.com")
    with pytest.raises(ValidationError) as err:
        accounts.register_user("ann@example.COM", "Ann", PASSWORD)
    assert "email" in err.value.errors
    for password in ("short", "1234567890", "aaaaaaaaaaaa"):
        with pytest.raises(ValidationError) as err:
            accounts.register_user("new@example.com", "New", password)
        assert "password" in err.value.errors
    with pytest.raises(ValidationError) as err:
        accounts.register_user("not-an-email", "x", PASSWORD)
    assert {"email", "display_name"} <= set(err.value.errors)


def test_passwords_are_hashed_with_scrypt_and_salted():
    """Passwords are stored as salted scrypt hashes, never in the clear."""
    a, b = make_user(), make_user()
    assert a.password_hash.startswith("scrypt:")
    assert a.password_hash != b.password_hash
    assert PASSWORD not in a.password_hash
    assert accounts.authenticate(a.email.upper(), PASSWORD).id == a.id
    assert accounts.authenticate(a.email, "wrong password!") is None
    assert accounts.authenticate("nobody@example.com", PASSWORD) is None


def test_production_hash_parameters_meet_owasp(app):
    """Without a test override the app hashes with scrypt N=2^17, r=8, p=1."""
    assert accounts.PASSWORD_METHOD == "scrypt:131072:8:1"
    assert "PASSWORD_HASH_METHOD" not in __import__("ideaboard.config").config.Config.__dict__


def test_role_change_is_admin_only_and_signs_out():
    """Only an admin changes roles (never their own); the user's sessions end."""
    admin, staff = make_user("admin"), make_user("staff")
    token = staff.session_token
    with pytest.raises(NotAllowed):
        accounts.change_role(staff, admin, "member")
    with pytest.raises(NotAllowed):
        accounts.change_role(admin, admin, "member")
    accounts.change_role(admin, staff, "member")
    assert staff.role == "member" and staff.session_token != token


def test_roadmap_columns_are_ordered_and_counts_are_capped(monkeypatch):
    """Columns list ideas by votes; totals beyond the cap are reported as capped."""
    from ideaboard.services import roadmap as rm

    monkeypatch.setattr(rm, "COUNT_CAP", 2)
    staff = make_user("staff")
    made = [make_idea(title=f"Planned {n}") for n in range(3)]
    for idea in made:
        rm.change_status(staff, idea, "planned")
    votes.toggle_vote(staff, made[1])
    db.session.commit()
    columns = rm.roadmap_columns(limit=2)
    planned = columns["planned"]
    assert [i.title for i in planned["ideas"]] == ["Planned 1", "Planned 2"]
    assert planned["capped"] and planned["total"] == 3
    heard = columns["heard"]
    assert (heard["ideas"], heard["total"], heard["capped"]) == ([], 0, False)
