"""Moderation and community settings forms: they parse and carry CSRF; services decide."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, HiddenField, SelectField, StringField, TextAreaField
from wtforms.fields import ColorField

from ideaboard.forms import FlaskForm


class ReasonForm(FlaskForm):
    """Hide or show again (`intent`), with the reason the author will read."""

    intent = HiddenField()
    reason = StringField(_l("Reason"))


class MoveForm(FlaskForm):
    to = SelectField(_l("Move to"), choices=[], validate_choice=False)
    reason = StringField(_l("Reason (optional)"))


class TitleForm(FlaskForm):
    title = StringField(_l("Title"))


class BanForm(FlaskForm):
    member = StringField(_l("Member's name or email"))
    reason = StringField(_l("Reason"))
    days = SelectField(_l("For how long"), choices=[], validate_choice=False)


class LiftForm(FlaskForm):
    reason = StringField(_l("Reason (optional)"))


class SettingsForm(FlaskForm):
    name = StringField(_l("Name"))
    description = TextAreaField(_l("Description"))
    rules = TextAreaField(_l("Rules"))
    accent = ColorField(_l("Accent colour"))
    require_approval = BooleanField(_l("A moderator approves each new member's first post"))


class ModeratorForm(FlaskForm):
    """Appoint (`member`: a name or email) or remove (`user`: an id) a moderator."""

    intent = HiddenField()
    member = StringField(_l("Member's name or email"))
    user = HiddenField()


class CommunityForm(FlaskForm):
    slug = StringField(_l("Community address"))
    name = StringField(_l("Name"))
    description = TextAreaField(_l("Description (optional)"))
    owner = StringField(_l("Owner's name or email (optional)"))


class IntentForm(FlaskForm):
    intent = HiddenField()
