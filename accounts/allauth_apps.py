"""django-allauth's apps under names of their own in the staff console.

allauth's ``account`` app is also called "Accounts": the console showed two sections of that
name. These configs keep allauth's labels, models and migrations and change only the names;
settings.INSTALLED_APPS lists them instead of allauth's own. (A module of their own: Django
picks the project app's config from ``accounts/apps.py`` only while it is the one there.)
"""

from allauth.account.apps import AccountConfig
from allauth.socialaccount.apps import SocialAccountConfig


class SocialLoginEmailsConfig(AccountConfig):
    verbose_name = "Social login: email addresses"


class SocialLoginConfig(SocialAccountConfig):
    verbose_name = "Social login: providers and linked accounts"
