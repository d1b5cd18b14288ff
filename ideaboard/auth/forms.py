from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, HiddenField, PasswordField, StringField


class RegisterForm(FlaskForm):
    email = EmailField(_l("Email"))
    display_name = StringField(_l("Name others will see"))
    password = PasswordField(_l("Password"))
    next = HiddenField()


class LoginForm(FlaskForm):
    email = EmailField(_l("Email"))
    password = PasswordField(_l("Password"))
    remember = BooleanField(_l("Keep me signed in on this device"))
    next = HiddenField()
