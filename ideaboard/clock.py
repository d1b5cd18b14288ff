"""The time that token expiry and mail leases are judged by."""

from __future__ import annotations

from datetime import datetime

from flask import current_app, has_app_context

from .models.base import utcnow


def now() -> datetime:
    """Naive UTC now; a test sets the CLOCK config value to a function to move time."""
    fn = current_app.config.get("CLOCK") if has_app_context() else None
    return (fn or utcnow)()
