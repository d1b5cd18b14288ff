"""The vote click's fast path: an htmx vote toggle answered without building a Flask request.

A vote is the hottest write: a click, a tiny fragment back. Through Flask most of its CPU
went to the request and app contexts, every before- and after-request hook, Flask-Login's
ORM user, the ORM idea and a Jinja render (figures: docs/performance.md). This WSGI layer
answers the common case, and only that, at a fraction of the cost:

    POST /ideas/<id>/vote, from htmx, by a signed-in member whose session, sign-in, CSRF
    token and write limit all check out, on an idea they may vote on, from a list (not
    the idea page).

It decides nothing on its own; every rule is the one Flask applies, called from here:

- the request is read by the app's own request class, and judged by the same functions
  Flask's hooks and the route call: security.refusal() (NUL in the path or query, a body
  over MAX_CONTENT_LENGTH) and htmx.is_htmx() (HX-Request, history restores); the form
  is werkzeug's own parse of it (content types, repeated fields, encodings);
- the session cookie is read with Flask's own signing serializer;
- the sign-in is judged by security.sign_in_state() (absolute and idle lifetimes), and
  Flask-Login's "basic" session protection by the same identifier it computes;
- the CSRF token is found and checked as Flask-WTF does (signed, then compared with the
  session's), including the strict Referer check on HTTPS;
- "may vote" is permissions.py's: services.votes.toggle_for_session() reads the rows'
  facts and asks the predicates (SQLite), or runs their SQL twins in its one statement
  (PostgreSQL); the toggle is services.votes.toggle_on(), which the Flask route runs too;
- the member's write limit (VOTE_LIMIT) is counted first, atomically, in Flask-Limiter's
  own storage under the key its decorator uses (ratelimit.py), so both paths share one
  budget; a request passed on to Flask gets its count back first, and Flask counts it;
- the fragment is ideas/_vote.html, the Flask route's own template, rendered once per
  locale as a shared render (perf/shared.py) with stand-ins for the id, count and token,
  compressed as Flask-Compress would, with the headers the Flask route sends.

It never answers anything else. Whatever it does not accept, it passes to Flask untouched
(with the body it read put back), *before* it writes anything: a visitor, a bad or missing
token, an expired or refreshed session, staff (exempt from the limit), a limit reached, a
deleted or missing idea, the idea page's variant (it also refreshes the voters card), a
plain form post. So every refusal, error page, 429 and security-log line still comes from
the one Flask route, and tests of that route exercise the refusals of both
(tests/test_fastvote.py holds the two to the same answers, request by odd request).
"""

from __future__ import annotations

import functools
import hmac
import io
import logging
import re
import secrets
import time
from hashlib import sha512
from types import SimpleNamespace

from flask import Flask
from flask_compress.flask_compress import _choose_algorithm, _compress_data
from flask_wtf.csrf import same_origin
from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer
from limits import parse_many
from markupsafe import escape
from werkzeug.exceptions import HTTPException
from werkzeug.http import parse_cookie

from ideaboard import htmx, ratelimit, security
from ideaboard.assets import compress
from ideaboard.extensions import db, limiter
from ideaboard.formats import number_in
from ideaboard.i18n import LOCALE_COOKIE, locale_from
from ideaboard.models.base import MAX_INT
from ideaboard.perf import shared
from ideaboard.perf.pagecache import current_cache
from ideaboard.permissions import can_vote, is_member
from ideaboard.services import votes

from . import observe

log = logging.getLogger("ideaboard.fastvote")

# The vote route's URL as its <int:idea_id> rule matches it (security.IdConverter: no sign,
# at most MAX_INT); anything else (a leading zero, a trailing slash) is Flask's to route.
_PATH = re.compile(r"/ideas/([1-9][0-9]{0,9})/vote\Z")
_MAX_BODY = 4096
ENDPOINT = "ideas.vote"  # whose Flask-Limiter bucket the votes count in
# Stand-ins rendered into the template once, then replaced by each answer's values. The
# fragment shows no user content, so nothing typed can spell one; nor can anyone guess
# one: each is drawn when the process starts. The id and count are 18 digits (real ones
# have at most 10, so replacing one cannot spell another); the token is shared.TOKEN.
_ID, _COUNT = (str(10**17 + secrets.randbelow(9 * 10**17)) for _ in range(2))


@functools.lru_cache(maxsize=256)
def _encoding(algorithms: tuple[str, ...], accepted: str) -> str | None:
    """Flask-Compress's own choice for this Accept-Encoding (browsers send a handful)."""
    return _choose_algorithm(algorithms, accepted)


def member_limit_key(user_id: int) -> str:
    """The write-limit key of a member: ratelimit.actor_key() for a signed-in member."""
    return ratelimit.member_key(user_id)


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
    checking a signature (base64, HMAC, zlib, JSON) twice a vote was a visible share of the
    fast path's CPU. A remembered value is the same string, so the same signature: only
    its age is checked again, as itsdangerous checks it. The loaded values are shared
    between requests: read them, never change them.
    """

    LIMIT = 4096  # values kept; then forgotten all at once
    MAX_BYTES = 1024 * 1024  # or once the values kept are this long together

    def __init__(self, serializer: URLSafeTimedSerializer) -> None:
        self.serializer = serializer
        self._seen: dict[str, tuple[object, int]] = {}
        self._bytes = 0

    def loads(self, value: str, max_age: int | None):
        """The loaded value; BadData (SignatureExpired for an old one) as loads() raises."""
        seen = self._seen.get(value)
        if seen is None:
            data, signed_at = self.serializer.loads(value, max_age=max_age, return_timestamp=True)
            # A cookie may be up to 8 KB (gunicorn's header limit): count length, not values.
            if len(self._seen) >= self.LIMIT or self._bytes + len(value) > self.MAX_BYTES:
                self._seen.clear()
                self._bytes = 0
            seen = self._seen[value] = (data, int(signed_at.timestamp()))
            self._bytes += len(value)
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
        self.csrf_headers = list(config.get("WTF_CSRF_HEADERS", ["X-CSRFToken", "X-CSRF-Token"]))
        self.hsts = security.uses_hsts(config)
        self._fragments: dict[tuple, tuple[str, str]] = {}
        self._sessions: _Checked | None = None
        self._parser = None

    def __call__(self, environ, start_response):
        if (
            self.enabled
            and environ.get("REQUEST_METHOD") == "POST"
            and "HTTP_HX_REQUEST" in environ  # htmx.is_htmx() decides; this only sorts out
        ):
            match = _PATH.match(environ.get("PATH_INFO", ""))
            body = self._body(environ) if match and int(match.group(1)) <= MAX_INT else None
            if body is not None:
                started = time.perf_counter()
                answer = self._answer(environ, body, int(match.group(1)))
                if answer is not None:
                    status, headers, payload, user_id = answer
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
                    return [payload]
                environ["wsgi.input"] = io.BytesIO(body)  # Flask reads it again
        return self.wsgi_app(environ, start_response)

    # -- the checks, before anything is written ---------------------------------------

    @staticmethod
    def _body(environ) -> bytes | None:
        """The body, if it is small enough to be a vote's; None leaves the stream unread."""
        if "HTTP_TRANSFER_ENCODING" in environ:
            return None
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return None
        if length < 0 or length > _MAX_BODY:
            return None
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        return body if len(body) == length else None  # cut short: werkzeug refuses it

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

    def _sent_token(self, req, form) -> str | None:
        """The token as Flask-WTF's CSRFProtect._get_csrf_token() finds it (1.3): the
        field, else a field ending in its name ({prefix}-csrf_token), else a header."""
        token = form.get(self.csrf_field)
        if token:
            return token
        for key in form:
            if key.endswith(self.csrf_field) and form[key]:
                return form[key]
        for header in self.csrf_headers:
            token = req.headers.get(header)
            if token:
                return token
        return None

    def _page_token(self, token: str, sess: dict) -> str:
        """The token for the fragment's form. Tokens that never expire (WTF_CSRF_TIME_LIMIT
        None, the default) differ only in when they were signed, so the one just checked
        serves; otherwise a fresh one, as generate_csrf() makes."""
        if self.app.config.get("WTF_CSRF_TIME_LIMIT") is None:
            return token
        return self.csrf.dumps(sess[self.csrf_field])

    def _csrf_ok(self, req, token: str | None, sess: dict) -> bool:
        raw = sess.get(self.csrf_field)
        if not token or not raw:
            return False
        try:
            signed = self._tokens.loads(token, self.app.config.get("WTF_CSRF_TIME_LIMIT"))
        except BadData:
            return False
        if not hmac.compare_digest(str(raw), str(signed)):
            return False
        if req.is_secure and self.app.config.get("WTF_CSRF_SSL_STRICT", True):
            referrer = req.referrer
            return bool(referrer) and same_origin(referrer, f"https://{req.host}/")
        return True

    def _login(self, sess: dict) -> security.LoginId | None:
        config = self.app.config
        if "_remember" in sess or sess.get("_permanent"):
            return None  # Flask would set a cookie on the way out
        if security.sign_in_state(sess, security.epoch_now(config), config) != "ok":
            return None
        return security.LoginId.parse(sess["_user_id"])

    def _limits(self, user_id: int):
        """(limits, key args) of the member's vote budget, or None if limits are off."""
        if not self.app.config.get("RATELIMIT_ENABLED", True) or not limiter.enabled:
            return None
        items = sorted(parse_many(self.app.config["VOTE_LIMIT"]))
        return items, ratelimit.limit_args(member_limit_key(user_id), ENDPOINT)

    # -- the answer ------------------------------------------------------------------

    def _form(self, req, body: bytes):
        """req.form, as werkzeug reads it (Request._load_form_data: no Content-Type, no
        form; else the request's FormDataParser, with the app's limits, on the body),
        without wrapping the body we already hold in a stream limiter again. The parser
        depends only on the app's config, so it is made once."""
        if not req.environ.get("CONTENT_TYPE"):
            return req.parameter_storage_class()
        if self._parser is None:
            self._parser = req.make_form_data_parser()
        return self._parser.parse(io.BytesIO(body), req.mimetype, len(body), req.mimetype_params)[1]

    def _answer(self, environ, body: bytes, idea_id: int):
        with self.app.app_context():  # for the config, Flask's serializer and the database
            req = self.app.request_class(environ, populate_request=False)
            if security.refusal(req) is not None or not htmx.is_htmx(req):
                return None
            try:
                form = self._form(req, body)
            except HTTPException:  # too many parts, too large: Flask says so
                return None
            if form.get("on_idea_page") == "1":
                return None
            try:
                intent = votes.parse_intent(form.get("intent"))
            except votes.BadIntent:
                return None  # Flask answers 400
            cookies = parse_cookie(environ)  # what req.cookies parses, parsed once
            sess = self._session(cookies)
            if sess is None or sess.get("_id") != _identifier(environ):
                return None
            login = self._login(sess)
            token = self._sent_token(req, form)
            if login is None or not self._csrf_ok(req, token, sess):
                return None
            # i18n.locale_of(), from the cookies already parsed.
            locale = locale_from(
                cookies.get(LOCALE_COOKIE), environ.get("HTTP_ACCEPT_LANGUAGE", ""), self.app.config
            )
            try:
                # Rendered (and remembered) before anything is written: a template that
                # cannot be rendered this way leaves the vote to Flask.
                fragments = {v: self._fragment(locale, v, req.script_root) for v in (True, False)}
                done = self._counted_toggle(idea_id, login, intent)
            except Exception:  # noqa: BLE001 - nothing was written: Flask answers (503, ...)
                log.warning("vote fast path passed a request on after an error", exc_info=True)
                return None
            if done is None:
                return None
            # Written: from here on, answer whatever happens; passing on would vote twice.
            voted, count, limits = done
            status, headers, body = self._response(
                req, fragments[voted], idea_id, count, self._page_token(token, sess), limits
            )
            return status, headers, body, login.user_id

    def _counted_toggle(self, idea_id: int, login: security.LoginId, intent: str | None = None):
        """(voted, count, limits) once committed; None, with nothing written and the
        limit's count given back, to pass the request to Flask."""
        limits = self._limits(login.user_id)
        if limits is not None and not ratelimit.hit_all(*limits):
            return None  # Flask answers 429 (and logs it); hit_all gave the counts back
        try:
            done = self._toggle(idea_id, login, intent)
        except BaseException:
            self._refund(limits)
            raise
        if done is None:
            self._refund(limits)  # Flask counts it, if it counts at all
            return None
        return (*done, limits)

    @staticmethod
    def _refund(limits) -> None:
        if limits is not None:
            items, args = limits
            for item in items:
                ratelimit.refund(item, args)

    def _toggle(self, idea_id: int, login: security.LoginId, intent: str | None = None):
        """(voted, count) once committed; None, with nothing written, if the rule says no."""
        engine = db.engine
        cache = current_cache()
        # The content version moves with the write (perf.freshness: driver_runner reports
        # it): in this transaction when the version is in the database, else after COMMIT.
        in_transaction = cache is not None and cache.versions.in_transaction
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql" and not in_transaction:
                # There the toggle is one statement, atomic by itself: as its own
                # transaction it saves the round trips of BEGIN and COMMIT.
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            done = votes.toggle_for_session(conn, idea_id, login.user_id, login.token, intent)
            if done is None:
                conn.rollback()
                return None  # gone, may not vote, a stale sign-in, or staff: Flask decides
            voted, count, _changed = done
            conn.commit()
        return voted, count

    def _limit_headers(self, limits) -> list[tuple[str, str]]:
        """Flask-Limiter's X-RateLimit headers, as its decorator adds them to a success."""
        if limits is None or not self.app.config.get("RATELIMIT_HEADERS_ENABLED"):
            return []
        items, args = limits
        reset, remaining = limiter.limiter.get_window_stats(items[0], *args)
        reset_at = int(reset + 1)
        return [
            ("X-RateLimit-Limit", str(items[0].amount)),
            ("X-RateLimit-Remaining", str(remaining)),
            ("X-RateLimit-Reset", str(reset_at)),
            ("Retry-After", str(int(reset_at - time.time()))),
        ]

    FRAGMENTS = 64  # kept; then forgotten all at once (locales x 2 x script roots)

    def _fragment(self, locale: str, voted: bool, script_root: str) -> tuple[str, str]:
        key = (locale, voted, script_root)
        if key not in self._fragments:
            if len(self._fragments) >= self.FRAGMENTS:
                self._fragments.clear()
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
            # The template groups the count (the `number` filter): take the grouped stand-in
            # back to the bare one, which _response replaces with the count grouped alike.
            html = html.replace(number_in(int(_COUNT), locale), _COUNT)
            self._fragments[key] = (html, locale)
        return self._fragments[key]

    def _response(self, req, fragment, idea_id, count, token, limits):
        extra = []
        try:
            extra = self._limit_headers(limits)
        except Exception:  # noqa: BLE001 - as Flask-Limiter: a storage error is no 500
            log.exception("could not read the member's write limit")
        config = self.app.config
        html, locale = fragment
        html = (
            html.replace(_ID, str(idea_id))
            .replace(_COUNT, number_in(count, locale))
            .replace(shared.TOKEN, str(escape(token)))
        )
        body = html.encode("utf-8")
        headers = [("Content-Type", "text/html; charset=utf-8")]
        # As Flask-Compress chooses and compresses (its after_request, for a 200 text/html).
        algorithm = _encoding(compress.enabled_algorithms, req.headers.get("Accept-Encoding", ""))
        if algorithm is not None and len(body) >= config.get("COMPRESS_MIN_SIZE", 500):
            body = _compress_data(self.app, body, algorithm)
            headers.append(("Content-Encoding", algorithm))
        headers += [
            ("Content-Length", str(len(body))),
            # As the Flask route: the fragment is in the reader's language (i18n.VARY).
            ("Vary", "Accept-Language, Cookie, HX-Request, Accept-Encoding"),
            *security.security_headers(self.hsts),
            ("Cache-Control", "no-store"),
            *extra,
        ]
        return "200 OK", headers, body
