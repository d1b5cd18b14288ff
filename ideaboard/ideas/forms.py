from flask_babel import lazy_gettext as _l
from wtforms import (
    BooleanField,
    HiddenField,
    IntegerField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice

from ideaboard.forms import FlaskForm
from ideaboard.i18n import KIND_LABELS


class IdeaForm(FlaskForm):
    title = StringField(_l("Title"))
    body = TextAreaField(_l("Description"))
    board = SelectField(_l("Board"), coerce=int, validate_choice=False)
    kind = RadioField(
        _l("Kind"),
        choices=[SelectChoice(k, v) for k, v in KIND_LABELS.items()],
        default="idea",
        validate_choice=False,
    )
    # The version the author started from: an older one means a stale edit (409).
    version = IntegerField(widget=HiddenField.widget)


class CommentForm(FlaskForm):
    body = TextAreaField(_l("Comment"))
    official = BooleanField(_l("Post as the official response"))
    next = HiddenField()
