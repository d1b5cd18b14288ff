"""The speed machinery, kept together so it is seen as one thing.

- pagecache.py  pages and fragments cached under the shared content version
- freshness.py  every committed write to page content moves that version, whoever writes
- rows.py       idea-list rows rendered once per distinct content
- fastvote.py   the htmx vote click answered without a Flask request
- writergate.py SQLite writers queue on a file lock; checkpoints outside it
- driver.py     the vote's fixed statements straight on the DB-API cursor
- worker.py     the gunicorn worker that takes only its share of connections

Each has invariants a feature author must keep; docs/performance.md states them and
names the test that enforces each.
"""
