"""Commands from the contract: users create, boards create, demo."""

from sqlalchemy import func, select

from ideaboard.extensions import db
from ideaboard.models import Board, Comment, Idea, StatusChange, User, Vote
from ideaboard.services import votes


def _count(model):
    db.session.commit()
    return db.session.scalar(select(func.count()).select_from(model))


def test_users_create_with_password_from_stdin(app):
    """`users create --password -` reads the password from standard input."""
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=[
            "users",
            "create",
            "--email",
            "Boss@Example.com",
            "--name",
            "Boss",
            "--role",
            "admin",
            "--password",
            "-",
        ],
        input="a long admin passphrase\n",
    )
    assert result.exit_code == 0, result.output
    user = db.session.scalar(select(User))
    assert (user.email, user.role) == ("Boss@example.com", "admin")
    from ideaboard.services.accounts import authenticate

    assert authenticate("boss@example.com", "a long admin passphrase").id == user.id


def test_users_create_refuses_bad_input(app):
    """A weak password or unknown role fails with a message and creates nothing."""
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["users", "create", "--email", "a@example.com", "--name", "A A", "--password", "short"]
    )
    assert result.exit_code == 1 and "password" in result.output
    result = runner.invoke(
        args=[
            "users",
            "create",
            "--email",
            "a@example.com",
            "--name",
            "A A",
            "--role",
            "king",
            "--password",
            "long enough pass",
        ]
    )
    assert result.exit_code != 0
    assert _count(User) == 0


def test_boards_create(app):
    """`boards create` adds a board; a taken slug is refused."""
    runner = app.test_cli_runner()
    result = runner.invoke(args=["boards", "create", "--slug", "mobile", "--name", "Mobile app"])
    assert result.exit_code == 0, result.output
    assert runner.invoke(args=["boards", "create", "--slug", "mobile", "--name", "X"]).exit_code
    assert _count(Board) == 2


def test_demo_fills_an_empty_database_and_refuses_a_full_one(app):
    """The demo makes boards, ~60 ideas in every status, votes and official answers once."""
    runner = app.test_cli_runner()
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    assert "admin@example.com" in result.output and "pm@example.com" in result.output
    assert _count(Board) == 4 and 55 <= _count(Idea) <= 70
    assert _count(Vote) > 60 and _count(Comment) > 60 and _count(StatusChange) > 60
    statuses = set(db.session.scalars(select(Idea.status)))
    assert statuses == {"heard", "under_review", "planned", "in_progress", "shipped", "declined"}
    assert db.session.scalar(select(func.count()).where(Comment.is_official)) >= 20
    assert votes.count_mismatches() == []
    roles = set(db.session.scalars(select(User.role)))
    assert {"admin", "staff", "member"} <= roles
    _assert_demo_communities(app, result.output)
    again = runner.invoke(args=["demo"])
    assert again.exit_code == 1 and "--force" in again.output
    assert runner.invoke(args=["demo", "--if-empty"]).exit_code == 0
    assert 55 <= _count(Idea) <= 70


def _assert_demo_communities(app, output: str) -> None:
    """i14: a Russian and an English fan club, with threads and replies in their language,
    a moderator who signs in, a pinned thread, and a promoted thread whose idea shipped."""
    from ideaboard.models import Community, CommunityModerator, Reply, Thread

    clubs = {c.slug: c for c in db.session.scalars(select(Community))}
    assert clubs["niva"].name == "Клуб владельцев Нивы" and "trail-riders" in clubs
    assert "mod@example.com" in output
    mod = db.session.scalar(select(User).where(User.email == "mod@example.com"))
    moderated = set(
        db.session.scalars(
            select(CommunityModerator.community_id).where(CommunityModerator.user_id == mod.id)
        )
    )
    assert moderated == {clubs["niva"].id}
    assert _count(Thread) >= 6 and _count(Reply) >= 12
    assert db.session.scalar(select(func.count()).where(Thread.pinned == 1)) == 2
    shipped = db.session.scalar(
        select(Idea)
        .join(Thread, Thread.idea_id == Idea.id)
        .where(Thread.community_id == clubs["niva"].id, Idea.status == "shipped")
    )
    assert shipped is not None and shipped.title == "Подогрев лобового стекла в приложении"
    client = app.test_client()
    page = client.get("/c/niva", headers={"Accept-Language": "ru"}).get_data(as_text=True)
    assert "Подогрев лобового стекла в приложении" in page
    assert "1 idea shipped" in client.get("/c").get_data(as_text=True)
