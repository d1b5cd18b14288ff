from flask_babel import lazy_gettext as _l
from wtforms import HiddenField, IntegerField, RadioField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice

from ideaboard.forms import FlaskForm
from ideaboard.i18n import KIND_LABELS


class ThreadForm(FlaskForm):
    title = StringField(_l("Title"))
    body = TextAreaField(_l("Text"))


class ReplyForm(FlaskForm):
    body = TextAreaField(_l("Your reply"))
    # The reply this one quotes (its id), if any.
    quote_of = IntegerField(widget=HiddenField.widget)


class PromoteForm(FlaskForm):
    """A thread turned into an idea: the thread's title and text by default, editable."""

    title = StringField(_l("Title"))
    body = TextAreaField(_l("Description"))
    board = SelectField(_l("Board"), coerce=int, validate_choice=False)
    kind = RadioField(
        _l("Kind"),
        choices=[SelectChoice(k, v) for k, v in KIND_LABELS.items()],
        default="idea",
        validate_choice=False,
    )
    # The idea a duplicate title named: link the thread to it instead of a new idea.
    link_to = IntegerField(widget=HiddenField.widget)
