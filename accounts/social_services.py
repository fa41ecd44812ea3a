"""Account writes of a social (OpenID Connect) sign-in: a new trader, or a link to an existing one.

django-allauth's ``SocialLogin`` carries the provider's account (provider id, subject, claims);
these functions store it with the project's own sign-up defaults and audit trail, each in one
durable transaction.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction

from trading.audit import audit_append
from trading.errors import Conflict

from . import services
from .models import User


def _account_data(sociallogin) -> dict:
    return {"provider": sociallogin.account.provider, "uid": sociallogin.account.uid}


def social_user_register(*, sociallogin, email: str) -> User:
    """A new trader from a provider's sign-in: the same account the sign-up form creates (no
    password), with the provider's account linked to it."""
    email = User.objects.normalize_email(email or "").strip().lower()
    try:
        with transaction.atomic(durable=True):
            user = services.user_create(email=email, password=None)
            sociallogin.account.user = user
            sociallogin.account.save()
            audit_append(actor=user, action="auth.social_signup", target=user, data=_account_data(sociallogin))
    except IntegrityError as exc:
        raise Conflict("This email is already registered.", code="email_taken") from exc
    sociallogin.user = user
    return user


def social_account_link(*, sociallogin, user: User) -> User:
    """Link the provider's account to an existing trader (the caller checked that the provider
    verified the trader's email)."""
    try:
        with transaction.atomic(durable=True):
            sociallogin.account.user = user
            sociallogin.account.save()
            audit_append(actor=user, action="auth.social_linked", target=user, data=_account_data(sociallogin))
    except IntegrityError as exc:
        raise Conflict("This provider account is already linked to another trader.", code="social_taken") from exc
    sociallogin.user = user
    return user
