"""Social sign-in with OpenID Connect providers (configured by ``OIDC_PROVIDERS``).

django-allauth runs the provider round trip only: the authorization request with state and
PKCE, the callback, the token exchange and the id_token and userinfo checks. Everything else is
the project's: the login page shows a button per provider; a new trader is created by the
sign-up service; an existing email is linked only when the provider says it verified the
email; a trader with 2FA on stops at the project's code step (``web.login_otp``) with the
session not signed in; the sign-in is recorded in the login history like any other.
"""

from __future__ import annotations

import logging

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.internal.stagekit import clear_login
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.providers.base import AuthError
from django.contrib import messages
from django.contrib.auth import login as session_login
from django.shortcuts import redirect

from trading.errors import DomainError

from . import social_services
from .login_steps import landing_url, pending_login_start
from .models import User
from .otp import two_factor_enabled

logger = logging.getLogger(__name__)

SIGN_IN_METHOD = "oidc"


def _refusal(request, message: str) -> ImmediateHttpResponse:
    """Back to the login page with the reason; nothing of the attempt stays in the session."""
    clear_login(request)
    messages.error(request, message)
    return ImmediateHttpResponse(redirect("web:login"))


class AccountAdapter(DefaultAccountAdapter):
    """allauth's account side: only reached at the end of a provider's sign-in."""

    def is_open_for_signup(self, request) -> bool:
        return True

    def pre_login(self, request, user, **kwargs):
        sociallogin = (kwargs.get("signal_kwargs") or {}).get("sociallogin")
        provider = sociallogin.account.provider if sociallogin is not None else ""
        if not user.is_active:
            raise _refusal(request, "This account is disabled. Please contact support.")
        if two_factor_enabled(user=user):
            next_url = kwargs.get("redirect_url") or landing_url()
            return pending_login_start(request, user=user, next_url=next_url, provider=provider)
        request.sign_in_method = SIGN_IN_METHOD
        request.sign_in_provider = provider
        return None

    def login(self, request, user) -> None:
        session_login(request, user, backend="django.contrib.auth.backends.ModelBackend")

    def add_message(self, *args, **kwargs) -> None:
        """allauth's own notices ("Successfully signed in as ...") are not the project's voice."""


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def pre_social_login(self, request, sociallogin) -> None:
        if sociallogin.is_existing:  # this provider account is linked already
            return
        name = sociallogin.provider.name
        address = sociallogin.email_addresses[0] if sociallogin.email_addresses else None
        if address is None or not address.email:
            raise _refusal(
                request,
                f"{name} did not share your email address, so we cannot sign you in with it. "
                f"Allow {name} to share it, or sign in with your password.",
            )
        email = User.objects.normalize_email(address.email).strip().lower()
        user = User.objects.filter(email=email).first()
        if user is None:
            return  # a new trader: allauth's auto sign-up calls save_user
        if not address.verified:
            raise _refusal(
                request,
                f"An account with {email} already exists, and {name} does not confirm that this email "
                f"address is yours, so it was not linked. Sign in with your password.",
            )
        try:
            social_services.social_account_link(sociallogin=sociallogin, user=user)
        except DomainError as exc:
            raise _refusal(request, str(exc)) from exc

    def save_user(self, request, sociallogin, form=None):
        address = sociallogin.email_addresses[0]
        try:
            return social_services.social_user_register(sociallogin=sociallogin, email=address.email)
        except DomainError as exc:
            raise _refusal(request, str(exc)) from exc

    def on_authentication_error(self, request, provider, error=None, exception=None, extra_context=None):
        name = getattr(provider, "name", "The provider")
        logger.warning("OpenID Connect sign-in with %s failed: %s %r", name, error, exception)
        if error == AuthError.CANCELLED:
            raise _refusal(request, f"Sign-in with {name} was cancelled.")
        raise _refusal(
            request, f"Sign-in with {name} did not complete. Please try again, or sign in with your password."
        )
