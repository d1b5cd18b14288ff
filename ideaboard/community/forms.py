from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, IntegerField, StringField, TextAreaField


class ThreadForm(FlaskForm):
    title = StringField(_l("Title"))
    body = TextAreaField(_l("Text"))


class ReplyForm(FlaskForm):
    body = TextAreaField(_l("Your reply"))
    # The reply this one quotes (its id), if any.
    quote_of = IntegerField(widget=HiddenField.widget)
