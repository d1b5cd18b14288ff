"""Forms shared across areas. Forms parse and carry CSRF; the rules live in services."""

from __future__ import annotations

from flask_wtf import FlaskForm

from ideaboard.services.errors import ValidationError


def apply_errors(form: FlaskForm, error: ValidationError) -> None:
    """Show a service's validation messages beside the matching fields."""
    for name, message in error.errors.items():
        field = getattr(form, name, None)
        if field is not None:
            field.errors = [*field.errors, message] if field.errors else [message]
        else:
            form.form_errors.append(message)
