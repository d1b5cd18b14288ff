from flask_babel import lazy_gettext as _l
from wtforms import RadioField
from wtforms.fields.choices import SelectChoice

from ideaboard.forms import FlaskForm
from ideaboard.models import Delivery
from ideaboard.services.notification_mail import DELIVERY_LABELS


def _delivery(label) -> RadioField:
    # The service checks the value (a message beside the field, 422), not WTForms.
    return RadioField(
        label,
        choices=[SelectChoice(d, DELIVERY_LABELS[d]) for d in Delivery.ALL],
        validate_choice=False,
    )


class NotificationSettingsForm(FlaskForm):
    """One delivery per group of kinds (services.notification_mail.GROUPS) and a language."""

    status = _delivery(_l("Status changes and official responses"))
    comments = _delivery(_l("New comments"))
    merges = _delivery(_l("Merges"))
    my_ideas = _delivery(_l("Changes staff made to my ideas"))
    communities = _delivery(_l("Replies in community threads"))
    locale = RadioField(_l("Language of emails"), choices=[], validate_choice=False)
