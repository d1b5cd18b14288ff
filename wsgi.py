"""WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi ...`."""

from ideaboard import create_app

app = create_app()
