"""What the freshness tests share (test_freshness.py for ideas, test_community_freshness.py
for communities): the worker under test and another on the same database and stores, with
each store (the backend's own, Redis), and a visitor who can tell a kept page from a render.

The test modules import the fixtures by name, so pytest finds them there.
"""

from __future__ import annotations

import uuid

import pytest
from flask import request_started

from .conftest import TEST_REDIS, fresh_app, redis_or_skip


@pytest.fixture(params=["own", "redis"])
def settings(request):
    """The stores: the backend's own (files beside SQLite, tables in PostgreSQL), or
    Redis."""
    if request.param == "redis":
        redis_or_skip()
        return {"REDIS_URL": TEST_REDIS, "RATELIMIT_KEY_PREFIX": uuid.uuid4().hex}
    return {}


@pytest.fixture
def server(make_app, settings):
    """A worker serving pages, over empty tables, in its app context."""
    with fresh_app(make_app, **settings) as app:
        yield app


@pytest.fixture
def other(make_app, settings, tmp_path):
    """Another app instance on the same database and stores (another worker, or a command
    run beside the server), with caches and stamps of its own."""
    app = make_app(**settings)
    app.instance_path = str(tmp_path / "instance-other")
    return app


class Visitor:
    """A browser without a session: get() says whether Flask rendered the page."""

    def __init__(self, app) -> None:
        self.client = app.test_client()
        self.rendered = 0
        request_started.connect(self._started, app, weak=False)

    def _started(self, _sender, **_extra) -> None:
        self.rendered += 1

    def get(self, url: str = "/ideas") -> tuple[bool, str]:
        before = self.rendered
        resp = self.client.get(url)
        assert resp.status_code == 200, url
        return self.rendered > before, resp.get_data(as_text=True)

    def warm(self, *urls: str) -> str:
        """Load each page (the board by default) twice: the second load must come from the
        cache. The last page's text."""
        page = ""
        for url in urls or ("/ideas",):
            self.get(url)
            rendered, page = self.get(url)
            assert not rendered, f"{url} was not cached"
        return page
