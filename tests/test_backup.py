"""Backups, restores and a member's data export (security.md #46, section 4.3).

Each round trip runs on the suite's backend: SQLite through the online backup API, and in
the PostgreSQL pass `pg_dump -Fc` restored into a scratch database. Equality is checked
with row counts and a hash over every column of every row, read with `SELECT *` (this
file's own fingerprint, not the code under test).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import stat
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from ideaboard import backup
from ideaboard.extensions import db
from ideaboard.models import Idea, User
from ideaboard.services import comments, ideas, roadmap, votes

from .conftest import BACKEND, PG_URL, drop_pg_database, make_pg_database
from .factories import make_board, make_comment, make_idea, make_user, reload, vote_for

TABLES = ("boards", "users", "ideas", "votes", "comments", "status_changes")
SUFFIX = ".dump" if BACKEND == "postgres" else ".sqlite3"
sqlite_only = pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite backup API (SQLite pass)")
postgres_only = pytest.mark.skipif(BACKEND != "postgres", reason="pg_dump (PostgreSQL pass)")


def fingerprint(url: str) -> dict:
    """Row count and a SHA-256 over all columns of all rows (by id) of each table."""
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            out = {}
            for table in TABLES:
                rows = [
                    tuple(r) for r in conn.exec_driver_sql(f"SELECT * FROM {table} ORDER BY id")
                ]
                out[table] = (len(rows), hashlib.sha256(repr(rows).encode()).hexdigest())
            out["alembic_version"] = conn.exec_driver_sql(
                "SELECT version_num FROM alembic_version"
            ).scalar_one()
            return out
    finally:
        engine.dispose()


def mismatched_vote_counts(url: str) -> list:
    """Ideas whose stored vote_count differs from their vote rows."""
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql(
                "SELECT i.id, i.vote_count, coalesce(v.n, 0) FROM ideas i LEFT JOIN "
                "(SELECT idea_id, count(*) AS n FROM votes GROUP BY idea_id) v "
                "ON v.idea_id = i.id WHERE i.vote_count <> coalesce(v.n, 0)"
            ).all()
    finally:
        engine.dispose()


@pytest.fixture
def fresh_database(tmp_path):
    """Make empty databases on the suite's backend (a new SQLite file, or a scratch PG DB)."""
    made = []

    def _make() -> str:
        if BACKEND == "postgres":
            url = make_pg_database(PG_URL)
            made.append(url)
            return url
        made.append(None)
        return f"sqlite:///{tmp_path / f'fresh-{len(made)}.db'}"

    yield _make
    for url in made:
        if url is not None:
            drop_pg_database(PG_URL, url)


@pytest.fixture
def app_on(make_app, tmp_path):
    """An app over another database, with its instance folder in tmp_path."""

    def _make(url: str):
        other = make_app(SQLALCHEMY_DATABASE_URI=url)
        other.instance_path = str(tmp_path / "instance-other")
        return other

    return _make


def make_content() -> dict:
    """A board in use: two boards, members, staff, votes, comments, edits, status changes,
    a deleted idea, Markdown and non-Latin text."""
    mobile = make_board("mobile", "Mobile app")
    staff = make_user("staff", "Pat Staff")
    alice = make_user(name="Алиса Smith")
    bob = make_user(name="Bob O'Brien")
    one = make_idea(alice, "Offline mode for the mobile app", "Works **without** network.")
    two = make_idea(bob, "Экспорт отчётов в Excel", "Нужно для бухгалтерии.", board=mobile)
    gone = make_idea(bob, "Duplicate of offline mode", "Same as the other one.", kind="problem")
    for user in (alice, bob, staff):
        vote_for(one, user)
    vote_for(two, alice)
    make_comment(one, bob, "+1, we need this too.")
    edited = make_comment(two, alice, "First draft")
    comments.edit_comment(alice, edited, "Also CSV, please.")
    make_comment(one, staff, "We are looking into it.", official=True)
    roadmap.change_status(staff, one, "planned", "Next quarter")
    roadmap.change_status(staff, two, "under_review")
    ideas.delete_idea(staff, gone)
    db.session.commit()
    return {"one": one, "two": two, "alice": alice, "bob": bob, "staff": staff}


def run(app, *args: str):
    db.session.commit()  # the command must see what the test wrote
    with app.app_context():  # Flask runs a command in the current app's context, if any
        return app.test_cli_runner().invoke(args=list(args))


# --- round trips ---------------------------------------------------------------------


def test_backup_restores_into_a_fresh_database_identically(
    app, database_url, fresh_database, app_on, tmp_path
):
    """A backup restored into an empty database has the same rows, byte for byte, and the
    restored board works: the idea page and search show the ideas."""
    content = make_content()
    out = tmp_path / f"board{SUFFIX}"
    result = run(app, "backup", "--output", str(out))
    assert result.exit_code == 0, result.output
    before = fingerprint(database_url)
    counts = ", ".join(f"{t} {before[t][0]}" for t in TABLES)
    assert f"Rows: {counts}" in result.output
    assert f"Backup written to {out}" in result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600  # it holds password hashes

    fresh = fresh_database()
    restored = app_on(fresh)
    result = run(restored, "restore", str(out))
    assert result.exit_code == 0, result.output
    assert f"Rows: {counts}" in result.output
    assert fingerprint(fresh) == before

    client = restored.test_client()
    page = client.get(f"/ideas/{content['one'].id}")
    assert page.status_code == 200 and "Offline mode for the mobile app" in page.text
    assert "We are looking into it." in page.text
    found = client.get("/ideas?q=excel")
    assert "Экспорт отчётов в Excel" in found.text


@sqlite_only
def test_sqlite_backup_is_one_self_contained_file(app, tmp_path):
    """The SQLite backup is a plain rollback-journal file: copied alone, it opens whole."""
    make_content()
    out = tmp_path / "b.sqlite3"
    assert run(app, "backup", "--output", str(out)).exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.sqlite3"]  # no -wal beside it
    assert out.read_bytes()[18:20] == b"\x01\x01"  # not WAL
    moved = tmp_path / "elsewhere" / "copy.sqlite3"
    moved.parent.mkdir()
    moved.write_bytes(out.read_bytes())
    assert fingerprint(f"sqlite:///{moved}") == fingerprint(f"sqlite:///{out}")


# --- consistency while members vote --------------------------------------------------


class Voter(threading.Thread):
    """Votes (one commit per vote) until stopped, counting its commits: each member x idea
    pair once, or with `cycle` round and round (toggling votes on and off)."""

    def __init__(self, app, pairs: list[tuple[int, int]], cycle: bool) -> None:
        super().__init__(daemon=True)
        self.app, self.pairs, self.cycle = app, pairs, cycle
        self.commits = 0
        self.stop = threading.Event()
        self.changed = threading.Condition()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with self.app.app_context():
                i = 0
                while not self.stop.is_set():
                    if i == len(self.pairs) and not self.cycle:
                        self.stop.wait()
                        break
                    user_id, idea_id = self.pairs[i % len(self.pairs)]
                    votes.toggle_vote(db.session.get(User, user_id), db.session.get(Idea, idea_id))
                    db.session.commit()
                    i += 1
                    with self.changed:
                        self.commits += 1
                        self.changed.notify_all()
                db.session.remove()
        except BaseException as err:  # noqa: BLE001 - reported by the test
            self.error = err
            with self.changed:
                self.changed.notify_all()

    def wait_for(self, n: int, timeout: float = 10.0) -> None:
        """Block until n more votes are committed."""
        with self.changed:
            target = self.commits + n
            assert self.changed.wait_for(lambda: self.commits >= target or self.error, timeout), (
                "the voter stalled"
            )
        assert self.error is None, self.error

    def finish(self) -> None:
        self.stop.set()
        self.join(10)
        assert self.error is None, self.error


def _voter(app, cycle: bool) -> Voter:
    """A voter over 10 members x 20 ideas, none voted yet."""
    members = [make_user() for _ in range(10)]
    board = [make_idea(members[i % 3], body=f"Idea {i} of the voting test.") for i in range(20)]
    return Voter(app, [(m.id, i.id) for m in members for i in board], cycle)


@sqlite_only
def test_sqlite_backup_is_consistent_while_members_vote(app, database_url, tmp_path):
    """Votes committed between the copy's steps do not tear it: in the backup every idea's
    vote count equals its vote rows, and the copy never restarts."""
    make_content()
    voter = _voter(app, cycle=True)
    db.session.commit()
    live = Path(sa.make_url(database_url).database)
    out = tmp_path / "during.sqlite3"
    lines: list[str] = []
    step = 2
    pages = sa.create_engine(database_url, poolclass=NullPool)
    with pages.connect() as conn:
        expected_steps = math.ceil(conn.exec_driver_sql("PRAGMA page_count").scalar() / step)
    pages.dispose()

    def echo(line: str) -> None:
        lines.append(line)
        if line.startswith("backup: ") and "/" in line:
            # A restarted copy would never end while votes keep coming: fail instead.
            assert len(lines) < expected_steps + 10, "the backup restarted"
            voter.wait_for(1)  # a vote lands between every two steps

    voter.start()
    try:
        voter.wait_for(1)
        started_at = voter.commits
        result = backup.backup_sqlite(live, out, echo=echo, step_pages=step)
        during = voter.commits - started_at
    finally:
        voter.finish()

    progress = [re.search(r"([\d,]+)/[\d,]+ pages \(", ln) for ln in lines]
    done = [int(m.group(1).replace(",", "")) for m in progress if m]
    assert len(done) >= 5 and done == sorted(set(done)), progress  # never went back
    assert during >= len(done)
    assert mismatched_vote_counts(f"sqlite:///{out}") == []
    assert result.counts["votes"] == fingerprint(f"sqlite:///{out}")["votes"][0]
    assert fingerprint(f"sqlite:///{out}")["votes"] != fingerprint(database_url)["votes"]


@postgres_only
def test_pg_dump_is_consistent_while_members_vote(
    app, database_url, fresh_database, app_on, tmp_path
):
    """Votes committed after the dump's snapshot are not in it, and the counts it prints
    are the dump's own: the restored database matches them and its vote counts add up."""
    make_content()
    voter = _voter(app, cycle=False)
    db.session.commit()
    out = tmp_path / "during.dump"
    voter.start()
    try:
        voter.wait_for(1)
        result = backup.backup_postgres(
            db.engine, out, echo=lambda _line: None, before_dump=lambda: voter.wait_for(5)
        )
    finally:
        voter.finish()
    fresh = fresh_database()
    assert run(app_on(fresh), "restore", str(out)).exit_code == 0
    restored = fingerprint(fresh)
    assert {t: restored[t][0] for t in TABLES} == result.counts
    assert mismatched_vote_counts(fresh) == []
    assert fingerprint(database_url)["votes"][0] > result.counts["votes"]  # later votes left out


# --- restore safety ------------------------------------------------------------------


def test_restore_refuses_a_database_with_content_unless_forced(
    app, database_url, fresh_database, app_on, tmp_path
):
    """Without --force a used database is left alone; with it, the old content is first
    saved to a backup that restores to exactly what was replaced."""
    content = make_content()
    first = tmp_path / f"first{SUFFIX}"
    assert run(app, "backup", "--output", str(first)).exit_code == 0
    target_url = fresh_database()
    target = app_on(target_url)
    assert run(target, "restore", str(first)).exit_code == 0
    replaced = fingerprint(target_url)

    make_idea(content["alice"], "Calendar sync with Outlook")
    second = tmp_path / f"second{SUFFIX}"
    assert run(app, "backup", "--output", str(second)).exit_code == 0

    refused = run(target, "restore", str(second))
    assert refused.exit_code == 1
    assert "already has content" in refused.stderr and "--force" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert fingerprint(target_url) == replaced

    forced = run(target, "restore", "--force", str(second))
    assert forced.exit_code == 0, forced.output
    assert fingerprint(target_url) == fingerprint(database_url)
    saved = Path(re.search(r"saved to (\S+) first", forced.output).group(1))
    assert saved.parent == Path(target.instance_path) / "backups"
    back = run(target, "restore", "--force", str(saved))  # undo: the saved copy is whole
    assert back.exit_code == 0, back.output
    assert fingerprint(target_url) == replaced


def test_restore_rejects_a_file_that_is_not_a_backup(app, database_url, tmp_path):
    """A stray file is refused with one line and a non-zero status; nothing changes."""
    make_content()
    before = fingerprint(database_url)
    junk = tmp_path / f"notes{SUFFIX}"
    junk.write_text("meeting notes, not a database\n")
    result = run(app, "restore", "--force", str(junk))
    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1 and str(junk) in result.stderr
    assert fingerprint(database_url) == before
    missing = run(app, "restore", str(tmp_path / "nowhere.dump"))
    assert missing.exit_code != 0 and "does not exist" in missing.output
    if BACKEND == "sqlite":
        itself = run(app, "restore", "--force", sa.make_url(database_url).database)
        assert itself.exit_code == 1 and "is the live database itself" in itself.stderr
        assert fingerprint(database_url) == before


def test_backup_never_overwrites_without_force(app, database_url, tmp_path):
    """An existing output file is kept unless --force; the live SQLite file is never an
    output."""
    make_content()
    out = tmp_path / f"kept{SUFFIX}"
    out.write_text("yesterday's backup")
    result = run(app, "backup", "--output", str(out))
    assert result.exit_code == 1 and "already exists" in result.stderr
    assert out.read_text() == "yesterday's backup"
    assert run(app, "backup", "--force", "--output", str(out)).exit_code == 0
    assert out.read_bytes() != b"yesterday's backup"
    if BACKEND == "sqlite":
        live = sa.make_url(database_url).database
        result = run(app, "backup", "--force", "--output", live)
        assert result.exit_code == 1 and "live database" in result.stderr


def test_backup_is_never_written_through_a_symbolic_link(app, tmp_path):
    """A link at the output path (to a file, or to nowhere yet) is refused with a message,
    even with --force; neither the link nor what it points to is touched."""
    make_content()
    target = tmp_path / "victim.txt"
    target.write_text("someone else's file")
    dangling_target = tmp_path / "not-yet"
    for link, points_to in (
        (tmp_path / f"to-file{SUFFIX}", target),
        (tmp_path / f"to-nowhere{SUFFIX}", dangling_target),
    ):
        link.symlink_to(points_to)
        for extra in ([], ["--force"]):
            result = run(app, "backup", *extra, "--output", str(link))
            assert result.exit_code == 1 and "symbolic link" in result.stderr
            assert link.is_symlink() and os.readlink(link) == str(points_to)
    assert target.read_text() == "someone else's file"
    assert not dangling_target.exists()
    assert not list(tmp_path.glob(".*.partial"))


def test_backup_refuses_a_link_planted_at_its_temporary_name(app, tmp_path):
    """The half-written copy is created as a new file: a link waiting at its name is
    refused, not followed."""
    make_content()
    out = tmp_path / f"fresh{SUFFIX}"
    target = tmp_path / "victim.txt"
    target.write_text("someone else's file")
    (tmp_path / f".{out.name}.{os.getpid()}.partial").symlink_to(target)
    result = run(app, "backup", "--output", str(out))
    assert result.exit_code == 1 and "in the way" in result.stderr
    assert target.read_text() == "someone else's file" and not out.exists()


@pytest.mark.parametrize("kind", ["file", "link", "dangling link"])
def test_user_export_never_replaces_a_file_or_follows_a_link(app, tmp_path, kind):
    """users export --output writes a new owner-only file; a file or a link already at the
    path is refused with a message and left as it was."""
    c = make_content()
    target = tmp_path / "victim.txt"
    out = tmp_path / "alice.json"
    if kind == "file":
        out.write_text("an older export")
    else:
        if kind == "link":
            target.write_text("someone else's file")
        out.symlink_to(target)
    result = run(app, "users", "export", "--email", c["alice"].email, "--output", str(out))
    assert result.exit_code == 1
    assert "already exists" in result.stderr and "never replaces" in result.stderr
    if kind == "file":
        assert out.read_text() == "an older export"
    else:
        assert out.is_symlink()
        assert (
            target.read_text() == "someone else's file" if kind == "link" else not target.exists()
        )


def test_user_export_file_is_owner_only_whatever_the_umask(app, tmp_path):
    """The export is created readable and writable by its owner only, even under umask 0."""
    c = make_content()
    out = tmp_path / "alice.json"
    old = os.umask(0)
    try:
        result = run(app, "users", "export", "--email", c["alice"].email, "--output", str(out))
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_backup_defaults_to_a_timestamped_file_in_the_instance_folder(app, tmp_path):
    """Without --output the backup lands in instance/backups with a UTC time in its name."""
    make_content()
    app.instance_path = str(tmp_path / "instance")
    result = run(app, "backup")
    assert result.exit_code == 0, result.output
    (made,) = (tmp_path / "instance" / "backups").iterdir()
    assert re.fullmatch(r"ideaboard-\d{8}T\d{6}Z" + re.escape(SUFFIX), made.name)
    assert f"Backup written to {made}" in result.output


@postgres_only
def test_pg_backup_without_pg_dump_says_so(app, tmp_path, monkeypatch):
    """No pg_dump on PATH: one clear line and exit status 1, no file."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    result = run(app, "backup", "--output", str(tmp_path / "x.dump"))
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "pg_dump was not found on PATH; install the PostgreSQL client tools "
        "(the server's major version or newer)."
    )
    assert not (tmp_path / "x.dump").exists()


# --- a member's own data -------------------------------------------------------------


def _keys(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


def test_user_export_has_their_data_and_nobody_elses(app, tmp_path):
    """Alice's export holds her account, ideas (a deleted one too), comments and votes,
    and nothing Bob or staff wrote, even where their content interleaves with hers."""
    c = make_content()
    alice, bob, staff = reload(c["alice"]), reload(c["bob"]), reload(c["staff"])
    mine = make_idea(alice, "Alice: dark mode for reports", "Alice's own words.")
    make_comment(mine, bob, "Bob was here on Alice's idea.")
    vote_for(mine, bob)
    ideas.delete_idea(alice, mine)
    db.session.commit()

    out = tmp_path / "alice.json"
    result = run(app, "users", "export", "--email", alice.email.upper(), "--output", str(out))
    assert result.exit_code == 0, result.output
    assert result.output.strip() == (
        # Her votes: her two ideas' (an idea starts with its author's vote) and Bob's idea.
        f"Exported {alice.email}: 2 ideas, 1 comments, 3 votes, 2 status changes to {out}."
    )
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    text = out.read_text(encoding="utf-8")
    data = json.loads(text)

    assert data["account"] == {
        "id": alice.id,
        "email": alice.email,
        "display_name": "Алиса Smith",
        "role": "member",
        "created_at": alice.created_at.isoformat(timespec="seconds") + "Z",
    }
    assert [i["title"] for i in data["ideas"]] == [
        "Offline mode for the mobile app",
        "Alice: dark mode for reports",
    ]
    assert data["ideas"][1]["deleted_at"] is not None
    assert [cm["body"] for cm in data["comments"]] == ["Also CSV, please."]
    assert data["comments"][0]["edited_at"] is not None
    assert {v["idea_id"] for v in data["votes"]} == {c["one"].id, c["two"].id, mine.id}
    assert data["votes"][0]["idea_url"] == f"http://127.0.0.1:5000/ideas/{c['one'].id}"

    # Nothing of anyone else's, and no secrets of hers.
    assert not _keys(data) & {"password", "password_hash", "session_token", "email_key"}
    for secret in (alice.password_hash, alice.session_token):
        assert secret not in text
    for foreign in (
        bob.email,
        "Bob O'Brien",
        staff.email,
        "Pat Staff",
        "Экспорт отчётов в Excel",  # Bob's idea, which she voted for and commented on
        "Нужно для бухгалтерии.",
        "+1, we need this too.",
        "We are looking into it.",
        "Bob was here on Alice's idea.",
        "Next quarter",  # staff's note on her idea
        "Duplicate of offline mode",
    ):
        assert foreign not in text, foreign
    assert "deleted_by" not in text


def test_user_export_to_stdout_and_unknown_email(app):
    """Without --output the JSON goes to standard output (the summary to stderr); an
    unknown email fails with one line."""
    c = make_content()
    result = run(app, "users", "export", "--email", c["bob"].email)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["account"]["display_name"] == "Bob O'Brien"
    assert {i["title"] for i in data["ideas"]} == {
        "Экспорт отчётов в Excel",
        "Duplicate of offline mode",
    }
    assert result.stderr.startswith(f"Exported {c['bob'].email}: 2 ideas")
    missing = run(app, "users", "export", "--email", "nobody@example.com")
    assert missing.exit_code == 1
    assert missing.stderr == "No user has the email nobody@example.com.\n"
    assert missing.stdout == ""
