from flask_babel import lazy_gettext as _l
from wtforms import SelectField, TextAreaField
from wtforms.fields.choices import SelectChoice

from ideaboard.forms import FlaskForm
from ideaboard.i18n import STATUS_LABELS


class StatusForm(FlaskForm):
    status = SelectField(
        _l("Status"),
        # Merged is set by a merge only (services/merges.py), never chosen here.
        choices=[SelectChoice(k, v) for k, v in STATUS_LABELS.items() if k != "merged"],
        validate_choice=False,
    )
    note = TextAreaField(_l("Public note (optional)"))
