"""The bare endpoint: the fastest a Flask app can answer on this machine and this gunicorn.

`gunicorn -c gunicorn.conf.py bench.bare:app` serves it with the app's production settings;
the benchmark measures it first and reports every other scenario as a fraction of it.
"""

from __future__ import annotations

from flask import Flask

app = Flask(__name__)


@app.get("/")
@app.get("/healthz")
def ok():
    return "ok", 200, {"Content-Type": "text/plain; charset=utf-8"}
