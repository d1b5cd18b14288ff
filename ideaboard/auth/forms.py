from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, EmailField, HiddenField, PasswordField, StringField

from ideaboard.forms import FlaskForm


class RegisterForm(FlaskForm):
    email = EmailField(_l("Email"))
    display_name = StringField(_l("Name others will see"))
    password = PasswordField(_l("Password"))
    next = HiddenField()
    vote = HiddenField()  # the idea a visitor clicked vote on: cast once they are in


class LoginForm(FlaskForm):
    email = EmailField(_l("Email"))
    password = PasswordField(_l("Password"))
    remember = BooleanField(_l("Keep me signed in on this device"))
    next = HiddenField()
    vote = HiddenField()  # the idea a visitor clicked vote on: cast once they are in


class AccountForm(FlaskForm):
    display_name = StringField(_l("Name others will see"))
    email = EmailField(_l("Email"))
    current_password = PasswordField(_l("Current password"))


class PasswordChangeForm(FlaskForm):
    current_password = PasswordField(_l("Current password"))
    new_password = PasswordField(_l("New password"))


class ResetRequestForm(FlaskForm):
    email = EmailField(_l("Email"))


class ResetPasswordForm(FlaskForm):
    password = PasswordField(_l("New password"))


class EmptyForm(FlaskForm):
    """A button-only form: just the CSRF token."""
