"""The vote click's fast path: an htmx vote toggle answered without building a Flask request.

A vote is the hottest write: a click, a tiny fragment back. Through Flask it cost about
3 ms of CPU (the request and app contexts, every before- and after-request hook,
Flask-Login's ORM user, the ORM idea, a Jinja render), so 2 cores toggled 300-450 votes a
second. This WSGI layer answers the common case, and only that, at a fraction of the cost:

    POST /ideas/<id>/vote, from htmx, by a signed-in member whose session, sign-in, CSRF
    token and write limit all check out, on a live idea, from a list (not the idea page).

It applies the same rules as the Flask route, through the same code where it can:

- the session cookie is read with Flask's own signing serializer;
- the sign-in is judged by security.sign_in_state() (absolute and idle lifetimes), and
  Flask-Login's "basic" session protection by the same identifier it computes;
- the CSRF token is checked as Flask-WTF checks it (signed, then compared with the
  session's), including the strict Referer check on HTTPS;
- "may vote" is permissions.py's: services.votes.toggle_for_session() reads the rows'
  facts and asks the predicates (SQLite), or runs their SQL twins in its one statement
  (PostgreSQL); the toggle is services.votes.toggle_on(), which the Flask route runs too;
- the member's write limit (VOTE_LIMIT) is counted in Flask-Limiter's own storage under
  the key its decorator uses, so both paths share one budget;
- the fragment is ideas/_vote.html, the Flask route's own template, rendered once per
  locale as a shared render (perf/shared.py) with stand-ins for the id, count and token,
  with the headers the Flask route sends.

It never answers anything else. Whatever it does not accept, it passes to Flask untouched
(with the body it read put back), *before* it writes anything: a visitor, a bad or missing
token, an expired or refreshed session, staff (exempt from the limit), a limit reached, a
deleted or missing idea, the idea page's variant (it also refreshes the voters card), a
plain form post. So every refusal, error page, 429 and security-log line still comes from
the one Flask route, and tests of that route exercise the refusals of both.
"""

from __future__ import annotations

import gzip
import hmac
import io
import logging
import re
import time
from hashlib import sha512
from types import SimpleNamespace
from urllib.parse import parse_qsl

from flask import Flask
from flask_wtf.csrf import same_origin
from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer
from limits import parse_many
from markupsafe import escape
from werkzeug.http import parse_cookie
from werkzeug.wsgi import get_host

from ideaboard import security
from ideaboard.extensions import db, limiter
from ideaboard.i18n import LOCALE_COOKIE, locale_from
from ideaboard.perf import shared
from ideaboard.perf.pagecache import current_cache
from ideaboard.permissions import can_vote, is_member
from ideaboard.services import votes

from . import observe

log = logging.getLogger("ideaboard.fastvote")

_PATH = re.compile(r"/ideas/([1-9][0-9]{0,9})/vote\Z")
_MAX_BODY = 4096
ENDPOINT = "ideas.vote"  # whose Flask-Limiter bucket the votes count in
# Stand-ins rendered into the template once, then replaced by each answer's values.
_ID, _COUNT = "987654321987", "123456789123"


def member_limit_key(user_id: int) -> str:
    """The write-limit key of a member: ideas.views._member_key() for a signed-in member."""
    return f"member:{user_id}"


def _identifier(environ) -> str:
    """Flask-Login's _create_identifier() ("basic" session protection), from the environ."""
    address = environ.get("HTTP_X_FORWARDED_FOR", environ.get("REMOTE_ADDR"))
    if address is not None:
        address = address.encode("utf-8").split(b",")[0].strip()
    agent = environ.get("HTTP_USER_AGENT")
    if agent is not None:
        agent = agent.encode("utf-8")
    return sha512(f"{address}|{agent}".encode()).hexdigest()


class _Checked:
    """serializer.loads(value, max_age), remembering the values this worker has checked.

    A member's session cookie and CSRF token are the same on each of their clicks, and
    checking a signature (base64, HMAC, zlib, JSON) twice a vote was about a tenth of the
    fast path's CPU. A remembered value is the same string, so the same signature: only
    its age is checked again, as itsdangerous checks it. The loaded values are shared
    between requests: read them, never change them.
    """

    LIMIT = 4096  # values kept; then forgotten all at once

    def __init__(self, serializer: URLSafeTimedSerializer) -> None:
        self.serializer = serializer
        self._seen: dict[str, tuple[object, int]] = {}

    def loads(self, value: str, max_age: int | None):
        """The loaded value; BadData (SignatureExpired for an old one) as loads() raises."""
        seen = self._seen.get(value)
        if seen is None:
            data, signed_at = self.serializer.loads(value, max_age=max_age, return_timestamp=True)
            if len(self._seen) >= self.LIMIT:
                self._seen.clear()
            seen = self._seen[value] = (data, int(signed_at.timestamp()))
        elif max_age is not None:
            age = int(time.time()) - seen[1]
            if age > max_age or age < 0:
                raise SignatureExpired(f"Signature age {age} > {max_age} seconds")
        return seen[0]


class VoteFastPath:
    """WSGI middleware in front of Flask: see the module doc."""

    def __init__(self, app: Flask, wsgi_app) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        config = app.config
        self.enabled = config["VOTE_FAST_PATH"]
        self.session_cookie = config.get("SESSION_COOKIE_NAME", "session")
        self.max_age = int(app.permanent_session_lifetime.total_seconds())
        self.csrf = URLSafeTimedSerializer(
            config.get("WTF_CSRF_SECRET_KEY") or config["SECRET_KEY"], salt="wtf-csrf-token"
        )
        self._tokens = _Checked(self.csrf)
        self.csrf_field = config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
        self.csrf_headers = [
            "HTTP_" + h.upper().replace("-", "_")
            for h in config.get("WTF_CSRF_HEADERS", ["X-CSRFToken", "X-CSRF-Token"])
        ]
        self.hsts = security.uses_hsts(config)
        self._fragments: dict[tuple, str] = {}
        self._sessions: _Checked | None = None

    def __call__(self, environ, start_response):
        if (
            self.enabled
            and environ.get("REQUEST_METHOD") == "POST"
            and environ.get("HTTP_HX_REQUEST") == "true"
        ):
            match = _PATH.match(environ.get("PATH_INFO", ""))
            if match:
                started = time.perf_counter()
                answer = self._answer(environ, int(match.group(1)))
                if answer is not None:
                    status, headers, body, user_id = answer
                    start_response(status, headers)
                    if observe.listening():
                        observe.answered(
                            self.app,
                            observe.Answer(
                                via=observe.VIA_VOTE_FAST_PATH,
                                method="POST",
                                path=environ["PATH_INFO"],
                                endpoint=ENDPOINT,
                                status=200,
                                user_id=user_id,
                                seconds=time.perf_counter() - started,
                            ),
                        )
                    return [body]
        return self.wsgi_app(environ, start_response)

    # -- the checks, before anything is written ---------------------------------------

    def _form(self, environ) -> dict[str, str] | None:
        kind = environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
        if kind not in ("", "application/x-www-form-urlencoded"):
            return None
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return None
        if length < 0 or length > _MAX_BODY or "HTTP_TRANSFER_ENCODING" in environ:
            return None
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)  # Flask reads it again if we pass
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
        except (UnicodeDecodeError, ValueError):
            return None
        form: dict[str, str] = {}
        for name, value in pairs:
            form.setdefault(name, value)  # the first, as request.form.get() reads it
        return form

    def _session(self, cookies) -> dict | None:
        value = cookies.get(self.session_cookie)
        if not value:
            return None
        try:
            if self._sessions is None:
                serializer = self.app.session_interface.get_signing_serializer(self.app)
                self._sessions = _Checked(serializer)
            data = self._sessions.loads(value, self.max_age)
        except BadData:
            return None
        return data if isinstance(data, dict) else None

    def _sent_token(self, environ, form: dict) -> str | None:
        token = form.get(self.csrf_field)
        for header in self.csrf_headers:
            token = token or environ.get(header)
        return token

    def _page_token(self, environ, form: dict, sess: dict) -> str:
        """The token for the fragment's form. Tokens that never expire (WTF_CSRF_TIME_LIMIT
        None, the default) differ only in when they were signed, so the one just checked
        serves; otherwise a fresh one, as generate_csrf() makes."""
        if self.app.config.get("WTF_CSRF_TIME_LIMIT") is None:
            return self._sent_token(environ, form)
        return self.csrf.dumps(sess[self.csrf_field])

    def _csrf_ok(self, environ, form: dict, sess: dict) -> bool:
        token = self._sent_token(environ, form)
        raw = sess.get(self.csrf_field)
        if not token or not raw:
            return False
        try:
            signed = self._tokens.loads(token, self.app.config.get("WTF_CSRF_TIME_LIMIT"))
        except BadData:
            return False
        if not hmac.compare_digest(str(raw), str(signed)):
            return False
        if environ.get("wsgi.url_scheme") == "https" and self.app.config.get(
            "WTF_CSRF_SSL_STRICT", True
        ):
            referrer = environ.get("HTTP_REFERER")
            good = f"https://{get_host(environ)}/"
            return bool(referrer) and same_origin(referrer, good)
        return True

    def _login(self, sess: dict) -> security.LoginId | None:
        config = self.app.config
        if "_remember" in sess or sess.get("_permanent"):
            return None  # Flask would set a cookie on the way out
        if security.sign_in_state(sess, security.epoch_now(config), config) != "ok":
            return None
        return security.LoginId.parse(sess["_user_id"])

    def _limits(self, user_id: int):
        """(strategy, limits, key args) of the member's vote budget, or None if off."""
        if not self.app.config.get("RATELIMIT_ENABLED", True) or not limiter.enabled:
            return None
        items = sorted(parse_many(self.app.config["VOTE_LIMIT"]))
        args = [member_limit_key(user_id), ENDPOINT]
        prefix = self.app.config.get("RATELIMIT_KEY_PREFIX")
        if prefix:
            args = [prefix, *args]
        return limiter.limiter, items, args

    # -- the answer ------------------------------------------------------------------

    def _answer(self, environ, idea_id: int):
        if environ.get("HTTP_HX_HISTORY_RESTORE_REQUEST") == "true":
            return None
        form = self._form(environ)
        if form is None or form.get("on_idea_page") == "1":
            return None
        with self.app.app_context():  # for Flask's session serializer and the database
            cookies = parse_cookie(environ)
            sess = self._session(cookies)
            if sess is None or sess.get("_id") != _identifier(environ):
                return None
            login = self._login(sess)
            if login is None or not self._csrf_ok(environ, form, sess):
                return None
            try:
                done = self._toggle(idea_id, login)
            except Exception:  # noqa: BLE001 - nothing was written: Flask answers (503, ...)
                log.warning("vote fast path passed a request on after an error", exc_info=True)
                return None
            if done is None:
                return None
            # Written: from here on, answer whatever happens; passing on would vote twice.
            voted, count, limits = done
            locale = locale_from(
                cookies.get(LOCALE_COOKIE), environ.get("HTTP_ACCEPT_LANGUAGE", ""), self.app.config
            )
            status, headers, body = self._response(
                environ, form, idea_id, voted, count, sess, limits, locale
            )
            return status, headers, body, login.user_id

    def _toggle(self, idea_id: int, login: security.LoginId):
        """(voted, count, limits) once committed; None, with nothing written, to pass."""
        engine = db.engine
        cache = current_cache()
        limits = self._limits(login.user_id)
        if limits is not None:
            strategy, items, args = limits
            if not all(strategy.test(item, *args) for item in items):
                return None  # Flask answers 429 (and logs it)
        in_transaction = cache is not None and cache.versions.in_transaction
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql" and not in_transaction:
                # There the toggle is one statement, atomic by itself: as its own
                # transaction it saves the round trips of BEGIN and COMMIT.
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            done = votes.toggle_for_session(conn, idea_id, login.user_id, login.token)
            if done is None:
                conn.rollback()
                return None  # gone, may not vote, a stale sign-in, or staff: Flask decides
            voted, count, changed = done
            if changed and in_transaction:
                cache.versions.bump_in(conn)
            conn.commit()
        if changed and cache is not None and not in_transaction:
            cache.versions.bump()  # never raises: a failed bump is logged and drops copies
        return voted, count, limits

    def _limit_headers(self, strategy, item, args) -> list[tuple[str, str]]:
        """Flask-Limiter's X-RateLimit headers, as its decorator adds them to a success."""
        if not self.app.config.get("RATELIMIT_HEADERS_ENABLED"):
            return []
        reset, remaining = strategy.get_window_stats(item, *args)
        reset_at = int(reset + 1)
        return [
            ("X-RateLimit-Limit", str(item.amount)),
            ("X-RateLimit-Remaining", str(remaining)),
            ("X-RateLimit-Reset", str(reset_at)),
            ("Retry-After", str(int(reset_at - time.time()))),
        ]

    def _fragment(self, locale: str, voted: bool, script_root: str) -> str:
        key = (locale, voted, script_root)
        if key not in self._fragments:
            from flask_babel import force_locale

            idea = SimpleNamespace(id=int(_ID), vote_count=int(_COUNT))
            # The answers the fast path acts on: it writes only when the member may vote.
            viewer = shared.Viewer(
                {shared.question(can_vote, idea): True, shared.question(is_member): True}
            )
            with (
                self.app.test_request_context(
                    "/", method="POST", base_url=f"http://localhost{script_root}"
                ),
                force_locale(locale),
            ):
                # The Flask route's own template, as a shared render.
                html = shared.render(
                    "ideas/_vote.html", viewer, idea=idea, voted=voted, next_path=""
                )
            self._fragments[key] = html
        return self._fragments[key]

    def _response(self, environ, form, idea_id, voted, count, sess, limits, locale):
        extra = []
        if limits is not None:
            strategy, items, args = limits
            try:
                for item in items:
                    strategy.hit(item, *args)
                extra = self._limit_headers(strategy, items[0], args)
            except Exception:  # noqa: BLE001 - as Flask-Limiter: a storage error is no 500
                log.exception("could not count a vote against the member's write limit")
        config = self.app.config
        token = self._page_token(environ, form, sess)
        html = self._fragment(locale, voted, environ.get("SCRIPT_NAME", ""))
        html = (
            html.replace(_ID, str(idea_id))
            .replace(_COUNT, str(count))
            .replace(shared.TOKEN, str(escape(token)))
        )
        body = html.encode("utf-8")
        headers = [("Content-Type", "text/html; charset=utf-8")]
        accepted = environ.get("HTTP_ACCEPT_ENCODING", "")
        if "gzip" in accepted and len(body) >= config.get("COMPRESS_MIN_SIZE", 500):
            body = gzip.compress(body, config.get("COMPRESS_LEVEL", 6))
            headers.append(("Content-Encoding", "gzip"))
        headers += [
            ("Content-Length", str(len(body))),
            ("Vary", "HX-Request, Accept-Encoding, Cookie"),
            *security.security_headers(self.hsts),
            ("Cache-Control", "no-store"),
            *extra,
        ]
        return "200 OK", headers, body
