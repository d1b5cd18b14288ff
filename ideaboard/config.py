"""Configuration read from the environment, with working single-machine defaults."""

from __future__ import annotations

import os
import secrets
import tempfile
from datetime import timedelta
from pathlib import Path


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() not in {"0", "false", "no", "off"}


def load_secret_key(instance_path: str) -> str:
    """Return SECRET_KEY from the environment, or one generated once and kept in instance/."""
    key = os.environ.get("SECRET_KEY")
    if key:
        return key
    path = Path(instance_path) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    # O_EXCL so two workers starting at once agree on one key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


MIB = 1024 * 1024


class Config:
    """Production-ready defaults; every value can be overridden from the environment."""

    DATABASE_URL = os.environ.get("DATABASE_URL")  # None: SQLite under instance/
    BASE_URL = os.environ.get("BASE_URL", "http://127.0.0.1:5000").rstrip("/")
    MAIL_URL = os.environ.get("MAIL_URL")
    MAIL_FROM = os.environ.get("MAIL_FROM", "Ideaboard <noreply@localhost>")
    MAIL_TIMEOUT = float(os.environ.get("MAIL_TIMEOUT", "5"))  # seconds per SMTP operation
    MAIL_DIR = os.environ.get("MAIL_DIR")  # without MAIL_URL, mail is saved here (instance/mail)
    LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")  # the `ideaboard` loggers (security events)
    REDIS_URL = os.environ.get("REDIS_URL")
    # Rate-limit counters: REDIS_URL unless set (a Redis of their own, say, that never evicts).
    if os.environ.get("RATELIMIT_STORAGE_URI"):
        RATELIMIT_STORAGE_URI = os.environ["RATELIMIT_STORAGE_URI"]
    # Cache budgets in bytes. Each worker process keeps its own pages, comment fragments and
    # list rows; the pages kept in Redis (with REDIS_URL) are shared by all workers and hosts.
    PAGE_CACHE_MAX_BYTES = _int("PAGE_CACHE_MAX_BYTES", 64 * MIB)
    PAGE_CACHE_SHARED_MAX_BYTES = _int("PAGE_CACHE_SHARED_MAX_BYTES", 128 * MIB)
    FRAGMENT_CACHE_MAX_BYTES = _int("FRAGMENT_CACHE_MAX_BYTES", 16 * MIB)
    ROW_CACHE_MAX_BYTES = _int("ROW_CACHE_MAX_BYTES", 16 * MIB)
    RATELIMIT_ENABLED = _bool(os.environ.get("RATELIMIT_ENABLED"), True)
    # htmx vote clicks answered before Flask (perf/fastvote.py); false sends all to Flask.
    VOTE_FAST_PATH = _bool(os.environ.get("VOTE_FAST_PATH"), True)
    BABEL_DEFAULT_LOCALE = os.environ.get("IDEABOARD_LOCALE", "en")
    LANGUAGES = ("en", "ru")

    # hide_parameters: SQL logging and errors never show values (mail bodies hold reset links).
    # No pool_pre_ping: database.ping_when_idle() pings only connections that sat idle.
    SQLALCHEMY_ENGINE_OPTIONS = {"hide_parameters": True}
    # Seconds a pooled connection may sit idle and still be used without a ping first;
    # 0 pings on every checkout (as pool_pre_ping does).
    DB_PING_AFTER_IDLE = float(os.environ.get("DB_PING_AFTER_IDLE", "1"))
    MAX_CONTENT_LENGTH = 1024 * 1024
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    # Enforced by the server from the sign-in time (security.py), not only by cookie expiry:
    REMEMBER_COOKIE_DURATION = timedelta(days=30)  # "keep me signed in": absolute lifetime
    PERMANENT_SESSION_LIFETIME = timedelta(days=14)  # other sign-ins: absolute lifetime
    SESSION_IDLE_TIMEOUT = timedelta(hours=24)  # other sign-ins: ended after this idle time
    WTF_CSRF_TIME_LIMIT = None  # tokens live as long as the session; see style.md "Known traps"
    # Behind exactly this many reverse proxies (X-Forwarded-For / -Proto hops to trust).
    PROXY_HOPS = int(os.environ.get("PROXY_HOPS", "0"))
    PER_PAGE = 20
    LOGIN_LIMIT_IP = "6 per minute; 30 per hour"
    LOGIN_LIMIT_ACCOUNT = "10 per 15 minutes"
    REGISTER_LIMIT = "10 per hour"
    RESET_LIMIT_IP = "10 per hour"
    RESET_LIMIT_ACCOUNT = "3 per hour"
    RESET_TOKEN_TTL = timedelta(minutes=60)
    VERIFY_TOKEN_TTL = timedelta(hours=48)  # an email-confirmation link
    # Off (the contract): /register signs a new address in at once; a taken address gets
    # the same answer without the sign-in. On: nobody is signed in until the emailed link
    # is opened, so the answer is the same in every way (docs/security.md).
    REGISTER_CONFIRM_FIRST = _bool(os.environ.get("REGISTER_CONFIRM_FIRST"), False)
    VERIFY_RESEND_LIMIT = "3 per hour"  # new confirmation links a member may ask for
    # Wrong current passwords on /account and /account/password, per user.
    PASSWORD_CHECK_LIMIT = "10 per hour"
    # Writes, per member (staff are exempt), from Discourse's defaults; only writes that
    # succeed count, so a form sent back with an error costs nothing.
    IDEA_LIMIT = "1 per 15 seconds; 20 per day"
    COMMENT_LIMIT = "1 per 5 seconds; 200 per day"
    THREAD_LIMIT = "1 per 30 seconds; 20 per day"  # community threads
    REPLY_LIMIT = "1 per 5 seconds; 200 per day"  # community replies
    REPORT_LIMIT = "10 per hour; 30 per day"  # reports of ideas, comments, threads, replies
    # Posts (ideas, comments, threads, replies) with a link, by accounts younger than
    # NEW_ACCOUNT_HOURS: one budget for all four kinds, on top of each kind's own limit.
    NEW_ACCOUNT_LINK_LIMIT = "3 per hour"
    NEW_ACCOUNT_HOURS = 24
    # Distinct members with open reports of one item that hide it until a moderator reviews.
    REPORT_HIDE_THRESHOLD = _int("REPORT_HIDE_THRESHOLD", 3)
    VOTE_LIMIT = "30 per minute; 100 per day"
    FOLLOW_LIMIT = "30 per minute; 200 per day"
    SIMILAR_LIMIT = "60 per minute; 1000 per day"  # suggestions while typing a title
    # i13 notify: how often an open page asks for the header's unread count (seconds), and
    # whether a request fans out the events it recorded after its response (else only the
    # worker does: `flask mail send`, `flask notifications fan-out`).
    NOTIFY_POLL_SECONDS = 60
    NOTIFY_AFTER_RESPONSE = _bool(os.environ.get("NOTIFY_AFTER_RESPONSE"), True)
    # Live updates: how often an open idea page or roadmap asks what changed (seconds).
    LIVE_POLL_SECONDS = _int("LIVE_POLL_SECONDS", 10)
    # A visitor's unchanged poll answered 304 before Flask (perf/livepoll.py).
    LIVE_FAST_PATH = _bool(os.environ.get("LIVE_FAST_PATH"), True)
    EDIT_LIMIT = "30 per day"
    # Days an author may restore an idea they deleted themselves (and still see it).
    IDEA_RESTORE_DAYS = int(os.environ.get("IDEA_RESTORE_DAYS", "30"))
    TESTING = False
    DEBUG = False


class TestConfig(Config):
    """Settings for the test suite: CSRF off unless a test turns it on, in-memory limits."""

    TESTING = True
    WTF_CSRF_ENABLED = False
    RATELIMIT_ENABLED = False
    REDIS_URL = None
    SECRET_KEY = "test-secret-key"
    BASE_URL = "http://127.0.0.1:5000"
    MAIL_URL = None
    MAIL_DIR = os.path.join(tempfile.gettempdir(), "ideaboard-test-mail")
