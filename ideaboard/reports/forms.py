from flask_babel import lazy_gettext as _l
from wtforms import RadioField, TextAreaField

from ideaboard.forms import FlaskForm
from ideaboard.models.community import ReportReason


class ReportForm(FlaskForm):
    # Choices are labelled in the template (services.reports.reason_labels); any other
    # value is refused by the service, next to the field.
    reason = RadioField(_l("Why are you reporting this?"), choices=list(ReportReason.ALL))
    note = TextAreaField(_l("Anything moderators should know (optional)"))

    def validate_reason(self, field):  # the service decides, with its own message
        return True
