"""Rate limits counted before the request, and given back after it when it should not count.

Flask-Limiter's `deduct_when` tests a limit before the request and counts it after the
response. A burst is tested whole before any of it is counted, so it passes whole: 17-27
wrong passwords got through a limit of 6 a minute, 60 of 60 votes through 30. Here every
limit is counted first, with Flask-Limiter's ordinary hit (one atomic increment, in Redis
when the storage is shared), so of N requests at once exactly the limit pass. A route
whose policy counts only some answers (sign-in counts failures; a member's writes count
successes, so a form sent back with an error costs nothing) names a `refund_when`: after
the response, if it says this request should not have counted, each count the request
took is given back, again atomically, and never below zero.

Limit keys live in separate namespaces for members and visitors (`member:<id>`,
`visitor:<address>`): an address can never name a member's bucket.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from functools import wraps

from flask import Flask, Response, current_app, g, request
from flask_login import current_user
from limits import RateLimitItem
from limits.storage import MemoryStorage, RedisStorage

from .extensions import limiter
from .permissions import is_member, is_new_account
from .services.text import has_link

log = logging.getLogger("ideaboard.ratelimit")

# Give back one count if the counter still exists and is above zero: a refund never
# revives a window that has ended, nor lets a counter go negative.
_REDIS_REFUND = """
local value = tonumber(redis.call('GET', KEYS[1]) or '0')
if value > 0 then return redis.call('DECR', KEYS[1]) end
return 0
"""
_scripts: dict[int, object] = {}


def member_key(user_id: int) -> str:
    """The key of a member's own limits (their writes): the vote fast path uses it too."""
    return f"member:{user_id}"


def visitor_key(address: str | None) -> str:
    return f"visitor:{address}"


def actor_key() -> str:
    """Who is acting, in separate namespaces for members and visitors."""
    if is_member(current_user):
        return member_key(current_user.id)
    return visitor_key(request.remote_addr)


def limit_args(key: str, scope: str) -> list[str]:
    """The identifiers Flask-Limiter counts a route's limit under: its key prefix (as the
    extension holds it), the key, the scope (the endpoint). The vote fast path counts
    under these, so both paths spend one budget."""
    prefix = limiter._key_prefix  # what its own evaluation prepends
    return [prefix, key, scope] if prefix else [key, scope]


def limit(
    value: Callable[[], str],
    *,
    key_func: Callable[[], str] | None = None,
    refund_when: Callable[[Response], bool] | None = None,
    exempt_when: Callable[[], bool] | None = None,
    methods: Sequence[str] = ("POST",),
):
    """A route decorator: Flask-Limiter's limit, counted before the view; given back after
    the response when `refund_when(response)` is true. Routes stacking several limits give
    each the same `refund_when`: it is the route's policy, applied to every count taken."""
    counted = limiter.limit(
        value, key_func=key_func, methods=list(methods), exempt_when=exempt_when
    )

    def decorate(view):
        limited = counted(view)
        if refund_when is None:
            return limited

        @wraps(limited)
        def with_refund(*args, **kwargs):
            g.limit_refund_when = refund_when  # before the limits are counted (inside)
            return limited(*args, **kwargs)

        return with_refund

    return decorate


#: The one budget every post with a link by a new account spends (ideas, comments,
#: threads and replies alike): Flask-Limiter's shared scope.
LINK_SCOPE = "new-account-links"


def _new_account_posts_link(fields: Sequence[str]) -> bool:
    return is_new_account(current_user) and has_link(*(request.form.get(f) for f in fields))


def new_account_link_limit(fields: Sequence[str] = ("title", "body")):
    """A route decorator: posts whose `fields` hold a link, by an account younger than
    NEW_ACCOUNT_HOURS, count against NEW_ACCOUNT_LINK_LIMIT, one budget across every route
    that has it. Put it under the route's own write limit, whose refund policy (successes
    count) it shares."""
    return limiter.shared_limit(
        lambda: current_app.config["NEW_ACCOUNT_LINK_LIMIT"],
        scope=LINK_SCOPE,
        key_func=actor_key,
        methods=["POST"],
        exempt_when=lambda: not _new_account_posts_link(fields),
    )


def refund(item: RateLimitItem, args: Sequence[str]) -> None:
    """Give back one count of `item` for `args` (the identifiers it was hit with)."""
    strategy = limiter.limiter
    storage = strategy.storage
    key = item.key_for(*args)
    try:
        if isinstance(storage, RedisStorage):
            script = _scripts.get(id(storage))
            if script is None:
                script = _scripts[id(storage)] = storage.get_connection().register_script(
                    _REDIS_REFUND
                )
            script(keys=[storage.prefixed_key(key)])
        elif isinstance(storage, MemoryStorage):
            storage.decr(key)  # under the key's lock, floored at zero
        else:
            storage.incr(key, item.get_expiry(), amount=-1)
    except Exception:  # noqa: BLE001 - as Flask-Limiter: a storage error is no 500
        log.exception("could not give back a rate-limit count")


def hit_all(items: Sequence[RateLimitItem], args: Sequence[str]) -> bool:
    """Count one request against every limit in `items`, as Flask-Limiter does; if one is
    over, give back each count just taken and say False (the request will not run)."""
    strategy = limiter.limiter
    taken = []
    for item in items:
        taken.append(item)
        if not strategy.hit(item, *args):
            for counted in taken:
                refund(counted, args)
            return False
    return True


def _refund_after(response: Response) -> Response:
    refund_when = g.pop("limit_refund_when", None)
    if refund_when is not None and refund_when(response):
        for counted in limiter.current_limits:
            refund(counted.limit, counted.request_args)
    return response


def init_app(app: Flask) -> None:
    """Give back counts after responses; after Flask-Limiter's init_app, so this runs
    before it adds its X-RateLimit headers (after_request hooks run last-registered first)."""
    if app.config.get("RATELIMIT_STRATEGY", "fixed-window") != "fixed-window":
        # A refund is one decrement of a window's counter; other strategies keep entries.
        raise RuntimeError("ideaboard's rate limits need RATELIMIT_STRATEGY fixed-window")
    app.after_request(_refund_after)
