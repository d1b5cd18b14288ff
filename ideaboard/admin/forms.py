"""Admin forms: they parse and carry CSRF; services/admin.py decides."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import HiddenField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice

from ideaboard.forms import FlaskForm
from ideaboard.i18n import ROLE_LABELS


class NewBoardForm(FlaskForm):
    slug = StringField(_l("Board address"))
    name = StringField(_l("Board name"))
    description = TextAreaField(_l("Description (optional)"))


class BoardForm(FlaskForm):
    name = StringField(_l("Board name"))
    description = TextAreaField(_l("Description (optional)"))


class IntentForm(FlaskForm):
    """A button-only action whose button says what to do (`intent`): a retried request
    asks for the same end state, never a toggle."""

    intent = HiddenField()


class RoleForm(FlaskForm):
    role = SelectField(
        _l("Role"),
        choices=[SelectChoice(k, v) for k, v in ROLE_LABELS.items()],
        validate_choice=False,
    )
