"""State other processes must see lives in Redis when REDIS_URL is set."""

import subprocess
import sys
import uuid

from .conftest import TEST_REDIS, _reset, redis_or_skip

REDIS = TEST_REDIS


def test_login_throttle_is_counted_in_redis(make_app):
    """With REDIS_URL, sign-in failures are counted in Redis, where every worker sees them."""
    client = redis_or_skip()
    prefix = f"ib-test-{uuid.uuid4().hex[:8]}"
    app = make_app(
        RATELIMIT_ENABLED=True,
        REDIS_URL=REDIS,
        RATELIMIT_KEY_PREFIX=prefix,
        LOGIN_LIMIT_IP="2 per minute",
    )
    _reset(app)
    web = app.test_client()
    bad = {"email": "x@example.com", "password": "wrong password"}
    assert web.post("/login", data=bad).status_code == 422
    keys = client.keys(f"*{prefix}*")
    assert keys, "no rate-limit counter in Redis"
    # A second process (another worker) sharing Redis is refused at once.
    code = f"""
import sys
from ideaboard import create_app
from tests.conftest import _config
app = create_app({{**_config({app.config["SQLALCHEMY_DATABASE_URI"]!r}),
    "RATELIMIT_ENABLED": True, "REDIS_URL": {REDIS!r}, "RATELIMIT_KEY_PREFIX": {prefix!r},
    "LOGIN_LIMIT_IP": "2 per minute"}})
c = app.test_client()
codes = [c.post("/login", data={bad!r}).status_code for _ in range(2)]
print(codes)
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[422, 429]", out.stdout + out.stderr
    client.delete(*client.keys(f"*{prefix}*"))


def test_proxy_hops_trust_exactly_one_forwarded_address(make_app):
    """Behind one proxy the limiter keys on the client the proxy saw, not a spoofed hop."""
    app = make_app(RATELIMIT_ENABLED=True, PROXY_HOPS=1, LOGIN_LIMIT_IP="1 per minute")
    _reset(app)
    web = app.test_client()
    bad = {"email": "x@example.com", "password": "wrong password"}

    def post(forwarded):
        return web.post("/login", data=bad, headers={"X-Forwarded-For": forwarded}).status_code

    assert post("203.0.113.5") == 422
    # The client prepends a fake address; the proxy appends the real one: still limited.
    assert post("1.2.3.4, 203.0.113.5") == 429
    assert post("198.51.100.7") == 422  # a different real client has its own budget
