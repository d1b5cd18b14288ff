"""Static files: fingerprinted URLs, a year of caching, compression on the wire."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from flask import Flask, Response, request
from flask_compress import Compress

compress = Compress()

YEAR = 365 * 24 * 3600


def init_app(app: Flask) -> None:
    """Add ?v=<content hash> to every static URL and cache such URLs for a year."""
    app.config.setdefault("COMPRESS_ALGORITHM", ["gzip"])
    app.config.setdefault("COMPRESS_LEVEL", 6)
    app.config.setdefault("COMPRESS_MIN_SIZE", 500)
    # Compress static files as whole bodies (they are small), not as streams.
    app.config.setdefault("COMPRESS_STREAMS", False)
    compress.init_app(app)
    static = Path(app.static_folder)

    @lru_cache(maxsize=256)
    def fingerprint(filename: str) -> str | None:
        path = (static / filename).resolve()
        if not path.is_file() or static.resolve() not in path.parents:
            return None
        return hashlib.sha256(path.read_bytes()).hexdigest()[:12]

    @app.url_defaults
    def _static_version(endpoint: str, values: dict) -> None:
        if endpoint == "static" and "filename" in values and "v" not in values:
            version = fingerprint(values["filename"])
            if version:
                values["v"] = version

    @app.after_request
    def _static_cache(resp: Response) -> Response:
        if request.endpoint != "static":
            return resp
        if resp.status_code not in (200, 304):
            # A missing file must not be remembered as missing by browsers and proxies:
            # it may be deployed a moment later under the same name.
            resp.headers["Cache-Control"] = "no-store"
            return resp
        if resp.status_code == 200 and resp.direct_passthrough:
            # Buffer the (small) file so compression, which skips streams, applies to it.
            resp.direct_passthrough = False
            resp.get_data()
        if request.args.get("v") and request.args["v"] == fingerprint(
            request.view_args.get("filename", "")
        ):
            resp.headers["Cache-Control"] = f"public, max-age={YEAR}, immutable"
        else:
            resp.headers["Cache-Control"] = "public, max-age=300"
        return resp
