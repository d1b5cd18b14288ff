"""Backups and restores: `flask --app wsgi backup [--output PATH]` and `restore PATH`.

Both work on the database the app is configured with, and both are consistent while the
app keeps writing:

- SQLite: the online backup API (`sqlite3.Connection.backup`), in steps with a progress
  line. The source connection holds one read transaction for the whole copy, so every step
  reads the same WAL snapshot: writers go on meanwhile, and the copy never restarts (without
  that transaction SQLite restarts a backup after every outside write and, under steady
  votes, may never finish). The copy is written beside its destination under a temporary
  name, switched from WAL to a single self-contained file, checked with
  `PRAGMA integrity_check` and only then renamed into place. Never a file copy: copying
  a live WAL database loses or tears recent commits.
- PostgreSQL: `pg_dump -Fc`. The rows are counted in a REPEATABLE READ transaction whose
  snapshot pg_dump then uses (`--snapshot`), so the printed counts are those of the dump.

A restore refuses to overwrite a database with content unless given `--force`, and then
first saves that database beside the backups. SQLite restores with the backup API into
the live file (one write transaction: other connections see the old or the new database,
never a mix); PostgreSQL with `pg_restore --clean --if-exists --single-transaction`.
"""

from __future__ import annotations

import math
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.request import pathname2url

import click
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from flask import current_app
from sqlalchemy import Connection, Engine, case, inspect, update

from .extensions import db
from .models import ContentVersion
from .perf.freshness import content_changed

#: The tables a backup must carry over, parents first; counted after every backup/restore.
TABLES = ("boards", "users", "ideas", "votes", "comments", "status_changes")
#: Rows of these tables mean the database is in use (a fresh one has only the general board).
CONTENT_TABLES = ("users", "ideas", "votes", "comments", "status_changes")
STEPS = 20  # progress lines per SQLite copy, unless --step-pages says otherwise
MIN_STEP_PAGES = 256  # 1 MiB with 4 KiB pages
# pg_restore gives up instead of queueing forever behind a running app's locks.
RESTORE_LOCK_TIMEOUT = "15s"

Echo = Callable[[str], object]


class BackupError(Exception):
    """A backup or restore that cannot go on; the message is one line for the operator."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


@dataclass
class BackupResult:
    path: Path
    counts: dict[str, int]
    seconds: float
    size: int = 0
    extra: list[str] = field(default_factory=list)


# --- helpers -------------------------------------------------------------------------


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"  # pragma: no cover


def format_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{table} {n:,}" for table, n in counts.items())


def _sqlite_counts(conn: sqlite3.Connection) -> dict[str, int]:
    return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def _counts(conn: Connection) -> dict[str, int]:
    return {t: conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar_one() for t in TABLES}


def existing_content(conn: Connection) -> dict[str, int]:
    """Rows in the tables that exist: what a restore would overwrite."""
    names = set(inspect(conn).get_table_names())
    return {
        t: conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar_one()
        for t in TABLES
        if t in names
    }


def has_content(counts: dict[str, int]) -> bool:
    return any(counts.get(t, 0) for t in CONTENT_TABLES) or counts.get("boards", 0) > 1


def _check_output(output: Path, live: Path | None, force: bool) -> Path:
    """The output path, made absolute without following links, if a backup may go there.

    Never through a symbolic link (whoever made it chose where the database would land);
    never over an existing file without --force.
    """
    output = output.expanduser().absolute()
    if live is not None and output.resolve() == live.resolve():
        raise BackupError(f"The output {output} is the live database; choose another --output.")
    if output.is_symlink():
        raise BackupError(
            f"{output} is a symbolic link; backups are never written through links. "
            "Choose another --output."
        )
    if output.is_dir():
        raise BackupError(f"{output} is a directory; give a file name with --output.")
    if os.path.lexists(output) and not force:
        raise BackupError(f"{output} already exists; choose another --output or use --force.")
    try:
        output.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as err:
        raise BackupError(f"Cannot create {output.parent}: {err.strerror}.") from err
    return output


def create_private(path: Path) -> int:
    """Create `path` for writing, readable by the owner only: a new file, never an existing
    one and never through a symbolic link (O_EXCL, O_NOFOLLOW). The open descriptor."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    os.fchmod(fd, 0o600)  # whatever the umask
    return fd


def _private_temp(output: Path) -> Path:
    """An empty new file beside `output` readable by the owner only (backups hold password
    hashes and session tokens)."""
    tmp = output.with_name(f".{output.name}.{os.getpid()}.partial")
    try:
        os.close(create_private(tmp))
    except FileExistsError as err:
        raise BackupError(f"{tmp} is in the way (a link, or a backup still running).") from err
    except OSError as err:
        raise BackupError(f"Cannot write to {output.parent}: {err.strerror}.") from err
    return tmp


def _publish(tmp: Path, output: Path, force: bool) -> None:
    """Give the finished backup its name: over an existing file only with --force, and
    never over (or through) a link, even one that appeared while the backup ran."""
    if output.is_symlink():
        raise BackupError(f"{output} became a symbolic link; the backup was not written.")
    if force:
        os.replace(tmp, output)  # a rename replaces the name itself, never a link's target
        return
    try:
        os.link(tmp, output)  # atomic, and fails if anything took the name meanwhile
    except FileExistsError as err:
        raise BackupError(f"{output} appeared while the backup ran; it was left alone.") from err
    except OSError as err:  # a file system without hard links: check, then rename
        if os.path.lexists(output):
            raise BackupError(
                f"{output} appeared while the backup ran; it was left alone."
            ) from err
        os.replace(tmp, output)
        return
    tmp.unlink()


def _discard(path: Path) -> None:
    for p in (path, path.with_name(path.name + "-journal"), path.with_name(path.name + "-wal")):
        p.unlink(missing_ok=True)


def _sqlite_path(engine: Engine) -> Path:
    name = engine.url.database
    if not name or name == ":memory:" or name.startswith("file:"):
        raise BackupError("Only a SQLite database in a file can be backed up or restored.")
    return Path(name).resolve()


def _read_only(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{pathname2url(str(path))}?mode=ro", uri=True)
    conn.isolation_level = None  # transactions are ours to begin and end
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


def _script() -> ScriptDirectory:
    return ScriptDirectory(current_app.extensions["migrate"].directory)


def _check_revision(revision: str | None, what: str) -> str | None:
    """Refuse a backup made by a newer version of Ideaboard; say when a migration is due."""
    if revision is None:
        raise BackupError(f"{what} has no migration revision; it is not an Ideaboard backup.")
    script = _script()
    try:
        script.get_revision(revision)
    except CommandError as err:
        raise BackupError(
            f"{what} is at migration {revision}, which this version of Ideaboard does not "
            "know; restore it with the version that made it."
        ) from err
    head = script.get_current_head()
    if revision != head:
        return (
            f"The backup is at migration {revision}, the code at {head}: "
            "run `flask --app wsgi db upgrade` next."
        )
    return None


def _default_output(suffix: str, prefix: str = "ideaboard") -> Path:
    """instance/backups/<prefix>-<UTC time><suffix>, numbered if that second is taken."""
    folder = Path(current_app.instance_path) / "backups"
    stem = f"{prefix}-{_stamp()}"
    path, n = folder / f"{stem}{suffix}", 1
    while path.exists():
        n += 1
        path = folder / f"{stem}-{n}{suffix}"
    return path


def _bump_after_restore(engine: Engine, before: int | None) -> None:
    """Move the content version past both the old and the restored value, so that no
    worker serves a page it cached for a version number the restore brought back."""
    floor = before or 0
    with engine.begin() as conn:
        if "content_version" in inspect(conn).get_table_names():
            conn.execute(
                update(ContentVersion).values(
                    value=case((ContentVersion.value > floor, ContentVersion.value), else_=floor)
                    + 1
                )
            )
    # The rows came in around SQLAlchemy (the backup API, pg_restore): move the version
    # wherever it lives (the version file, Redis; the table once more), and the community
    # generation, since communities' stamps came back with their rows.
    content_changed(engine)
    content_changed(engine, community=True)


def _content_version(engine: Engine) -> int | None:
    with engine.connect() as conn:
        if "content_version" not in inspect(conn).get_table_names():
            return None
        return conn.exec_driver_sql("SELECT max(value) FROM content_version").scalar()


# --- SQLite --------------------------------------------------------------------------


def backup_sqlite(
    source: Path,
    output: Path,
    *,
    echo: Echo = click.echo,
    step_pages: int | None = None,
    force: bool = False,
) -> BackupResult:
    """Copy a live SQLite database with the online backup API; verify and count the copy."""
    if not source.exists():
        raise BackupError(f"There is no database at {source}.")
    output = _check_output(output, source, force)
    tmp = _private_temp(output)
    started = time.perf_counter()
    try:
        src = _read_only(source)
        try:
            dst = sqlite3.connect(tmp, isolation_level=None)
            try:
                # One read transaction for the whole copy: every step sees this snapshot.
                src.execute("BEGIN")
                src.execute("SELECT count(*) FROM sqlite_schema").fetchone()
                total = src.execute("PRAGMA page_count").fetchone()[0]
                pages = step_pages or max(MIN_STEP_PAGES, math.ceil(total / STEPS))
                echo(f"Backing up {source} (SQLite, {total:,} pages) to {output}")

                def progress(_status: int, remaining: int, total: int) -> None:
                    done = total - remaining
                    echo(f"backup: {done:,}/{total:,} pages ({100 * done // max(total, 1)}%)")

                src.backup(dst, pages=pages, progress=progress)
                src.execute("COMMIT")
                echo(f"backup: done, {total:,} pages in {time.perf_counter() - started:.1f} s")
                # The copy carries the source's WAL flag; make it one self-contained file.
                dst.execute("PRAGMA journal_mode=DELETE")
                problems = [row[0] for row in dst.execute("PRAGMA integrity_check")]
                if problems != ["ok"]:
                    raise BackupError(f"The copy failed its integrity check: {problems[0]}")
                echo("integrity_check: ok")
                counts = _sqlite_counts(dst)
            finally:
                dst.close()
        finally:
            src.close()
        _publish(tmp, output, force)
    except sqlite3.Error as err:
        _discard(tmp)
        raise BackupError(f"SQLite backup failed: {err}.") from err
    except BaseException:
        _discard(tmp)
        raise
    return BackupResult(output, counts, time.perf_counter() - started, output.stat().st_size)


def _inspect_sqlite_backup(path: Path) -> str | None:
    """Check that `path` is a sound Ideaboard SQLite backup; return its migration revision."""
    try:
        conn = _read_only(path)
        try:
            problems = [row[0] for row in conn.execute("PRAGMA integrity_check")]
            if problems != ["ok"]:
                raise BackupError(f"{path} failed its integrity check: {problems[0]}")
            names = {r[0] for r in conn.execute("SELECT name FROM sqlite_schema")}
            if not {"alembic_version", *TABLES} <= names:
                raise BackupError(f"{path} is not an Ideaboard backup (its tables are missing).")
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            return row[0] if row else None
        finally:
            conn.close()
    except sqlite3.DatabaseError as err:
        raise BackupError(f"{path} is not a SQLite database: {err}.") from err


def _make_room(engine: Engine, where, force: bool, save) -> tuple[int | None, list[str]]:
    """Before a restore: refuse a database with content unless `force`, and then save it
    first with `save()`. Returns the content version before, and lines to print after."""
    db.session.remove()
    with engine.connect() as conn:
        current = existing_content(conn)
    before = _content_version(engine)
    extra = []
    if has_content(current):
        if not force:
            raise BackupError(
                f"The database {where} already has content ({format_counts(current)}); "
                "use --force to replace it."
            )
        extra.append(f"The replaced database was saved to {save().path} first.")
    return before, extra


def restore_sqlite(
    engine: Engine, backup: Path, *, force: bool, echo: Echo = click.echo
) -> BackupResult:
    """Write a SQLite backup into the configured database, in one transaction."""
    target = _sqlite_path(engine)
    if backup.resolve() == target:
        raise BackupError(f"{backup} is the live database itself, not a backup of it.")
    hint = _check_revision(_inspect_sqlite_backup(backup), str(backup))
    if not target.parent.is_dir():
        raise BackupError(f"The directory of the database, {target.parent}, does not exist.")
    before, extra = _make_room(
        engine,
        target,
        force,
        lambda: backup_sqlite(target, _default_output(".sqlite3", "pre-restore"), echo=echo),
    )
    engine.dispose()
    started = time.perf_counter()
    echo(f"Restoring {backup} into {target}")
    try:
        src = _read_only(backup)
        try:
            dst = sqlite3.connect(target, isolation_level=None)
            try:
                dst.execute("PRAGMA busy_timeout=10000")

                def progress(_status: int, remaining: int, total: int) -> None:
                    done = total - remaining
                    echo(f"restore: {done:,}/{total:,} pages ({100 * done // max(total, 1)}%)")

                total = src.execute("PRAGMA page_count").fetchone()[0]
                src.backup(
                    dst, pages=max(MIN_STEP_PAGES, math.ceil(total / STEPS)), progress=progress
                )
                dst.execute("PRAGMA journal_mode=WAL")  # the mode the app runs in
                problems = [row[0] for row in dst.execute("PRAGMA integrity_check")]
                if problems != ["ok"]:
                    raise BackupError(f"The restored database failed its check: {problems[0]}")
                counts = _sqlite_counts(dst)
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as err:
        raise BackupError(f"SQLite restore failed: {err}.") from err
    engine.dispose()
    _bump_after_restore(engine, before)
    if hint:
        extra.append(hint)
    return BackupResult(target, counts, time.perf_counter() - started, extra=extra)


# --- PostgreSQL ----------------------------------------------------------------------


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(
            f"{name} was not found on PATH; install the PostgreSQL client tools "
            "(the server's major version or newer)."
        )
    return path


def _libpq(engine: Engine) -> tuple[str, dict[str, str]]:
    """A libpq URI for the engine's database, with the password in the environment
    (never on a command line that `ps` shows)."""
    url = engine.url
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    uri = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return uri, env


def _run(args: list[str], env: dict[str, str]) -> str:
    proc = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        name = Path(args[0]).name
        lines = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit status {proc.returncode}"
        reason = reason.removeprefix(f"{name}: ").removeprefix("error: ")
        raise BackupError(f"{name} failed: {reason}", reason)
    return proc.stdout


def backup_postgres(
    engine: Engine,
    output: Path,
    *,
    echo: Echo = click.echo,
    force: bool = False,
    before_dump: Callable[[], object] | None = None,
) -> BackupResult:
    """`pg_dump -Fc` of the configured database; counts from the dump's own snapshot."""
    pg_dump = _tool("pg_dump")
    pg_restore = _tool("pg_restore")
    output = _check_output(output, None, force)
    uri, env = _libpq(engine)
    tmp = _private_temp(output)
    started = time.perf_counter()
    try:
        with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
            snapshot = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
            counts = _counts(conn)
            if before_dump is not None:
                before_dump()
            echo(f"Dumping {engine.url.database} (PostgreSQL) to {output} with pg_dump -Fc")
            _run([pg_dump, "-Fc", f"--snapshot={snapshot}", f"--file={tmp}", uri], env)
            conn.rollback()
        _run([pg_restore, "--list", str(tmp)], env)  # the archive's table of contents reads
        _publish(tmp, output, force)
    except BaseException:
        _discard(tmp)
        raise
    seconds = time.perf_counter() - started
    echo(f"pg_dump: done in {seconds:.1f} s; pg_restore --list reads the archive")
    return BackupResult(output, counts, seconds, output.stat().st_size)


def _archive_revision(pg_restore: str, backup: Path, env: dict[str, str]) -> str | None:
    """The alembic revision inside a pg_dump archive (its alembic_version row)."""
    sql = _run([pg_restore, "--data-only", "--table=alembic_version", "--file=-", str(backup)], env)
    lines = iter(sql.splitlines())
    for line in lines:
        if line.startswith("COPY ") and "alembic_version" in line:
            value = next(lines, "\\.")
            return None if value == "\\." else value.strip()
    return None


def restore_postgres(
    engine: Engine, backup: Path, *, force: bool, echo: Echo = click.echo
) -> BackupResult:
    """`pg_restore --clean --if-exists` into the configured database, all or nothing."""
    pg_restore = _tool("pg_restore")
    uri, env = _libpq(engine)
    try:
        revision = _archive_revision(pg_restore, backup, env)
    except BackupError as err:
        raise BackupError(f"{backup} is not a pg_dump -Fc archive: {err.reason}.") from err
    hint = _check_revision(revision, str(backup))
    before, extra = _make_room(
        engine,
        engine.url.database,
        force,
        lambda: backup_postgres(engine, _default_output(".dump", "pre-restore"), echo=echo),
    )
    engine.dispose()  # our own idle connections must not hold up the DROPs
    started = time.perf_counter()
    echo(f"Restoring {backup} into {engine.url.database} with pg_restore")
    env["PGOPTIONS"] = f"{env.get('PGOPTIONS', '')} -c lock_timeout={RESTORE_LOCK_TIMEOUT}".strip()
    args = [pg_restore, "--clean", "--if-exists", "--no-owner", "--no-privileges"]
    args += ["--single-transaction", "--exit-on-error", f"--dbname={uri}", str(backup)]
    try:
        _run(args, env)
    except BackupError as err:
        raise BackupError(f"{err} (nothing was changed; stop the app servers and retry)") from err
    _bump_after_restore(engine, before)
    with engine.connect() as conn:
        counts = _counts(conn)
    if hint:
        extra.append(hint)
    return BackupResult(Path(backup), counts, time.perf_counter() - started, extra=extra)


# --- the commands --------------------------------------------------------------------


def _fail(err: BackupError) -> None:
    click.echo(str(err), err=True)
    sys.exit(1)


@click.command("backup")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the backup (default: instance/backups/ideaboard-<UTC time>.sqlite3 "
    "or .dump).",
)
@click.option("--force", is_flag=True, help="Overwrite the output file if it exists.")
@click.option(
    "--step-pages",
    type=click.IntRange(min=1),
    help="SQLite: pages copied per step (default: about 20 steps).",
)
def backup_command(output: Path | None, force: bool, step_pages: int | None) -> None:
    """Write a consistent backup of the database, even while the app is running."""
    engine = db.engine
    try:
        if engine.dialect.name == "sqlite":
            result = backup_sqlite(
                _sqlite_path(engine),
                output or _default_output(".sqlite3"),
                step_pages=step_pages,
                force=force,
            )
        elif engine.dialect.name == "postgresql":
            result = backup_postgres(engine, output or _default_output(".dump"), force=force)
        else:
            raise BackupError(f"Backups of {engine.dialect.name} databases are not supported.")
    except BackupError as err:
        _fail(err)
    click.echo(f"Rows: {format_counts(result.counts)}")
    click.echo(f"Backup written to {result.path} ({_size(result.size)}).")


@click.command("restore")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--force",
    is_flag=True,
    help="Replace a database that has content (it is saved under instance/backups first).",
)
def restore_command(path: Path, force: bool) -> None:
    """Restore a backup made by `backup` into the configured database."""
    engine = db.engine
    try:
        if engine.dialect.name == "sqlite":
            result = restore_sqlite(engine, path, force=force)
        elif engine.dialect.name == "postgresql":
            result = restore_postgres(engine, path, force=force)
        else:
            raise BackupError(f"Restores into {engine.dialect.name} databases are not supported.")
    except BackupError as err:
        _fail(err)
    for line in result.extra:
        click.echo(line)
    click.echo(f"Rows: {format_counts(result.counts)}")
    click.echo(f"Restored {path} in {result.seconds:.1f} s.")
