"""Static files: fingerprinted ones cached for a year, missing ones never cached."""

from __future__ import annotations

import pytest


def test_fingerprinted_static_file_is_cached_for_a_year(client):
    """A static URL with its content hash is public and immutable for a year."""
    from flask import url_for

    with client.application.test_request_context():
        url = url_for("static", filename="css/app.css")
    with client.get(url) as resp:
        assert resp.status_code == 200
        assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"


@pytest.mark.parametrize(
    "path", ["/static/css/missing.css", "/static/css/missing.css?v=0123456789ab", "/static/"]
)
def test_missing_static_file_is_not_cached(client, path):
    """A missing static file answers 404 with no public (or any) caching, so a file
    deployed a moment later is not hidden by a remembered 404."""
    resp = client.get(path)
    assert resp.status_code == 404
    cache = resp.headers.get("Cache-Control", "")
    assert "public" not in cache and "max-age" not in cache
    assert "no-store" in cache or "no-cache" in cache
