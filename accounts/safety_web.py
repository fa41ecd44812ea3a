"""The account page's safety sections: sessions and devices, sign-in history, the
anti-phishing code. Same services as the API; the page itself is ``web.account``."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from trading.errors import DomainError

from . import safety_selectors, safety_services
from .services import two_factor_enabled

HISTORY_ON_PAGE = 10


class AntiPhishingForm(forms.Form):
    code = forms.CharField(
        label="Anti-phishing code",
        max_length=20,
        required=False,
        help_text="4 to 20 letters or digits. Every email from us opens with it; leave empty to remove it.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "placeholder": "e.g. blue-harbor-42"}),
    )
    otp = forms.CharField(
        label="Authenticator code",
        max_length=6,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )

    def __init__(self, *args, two_factor: bool, **kwargs):
        super().__init__(*args, **kwargs)
        if not two_factor:
            del self.fields["otp"]
        else:
            self.fields["otp"].required = True


def account_context(request, *, anti_phishing_form=None) -> dict:
    """What the account page's safety sections show."""
    user = request.user
    current = safety_selectors.current_session_id(request)
    sessions = safety_selectors.user_sessions_active(user=user)
    for session in sessions:
        session.is_current = session.pk == current
    return {
        "sessions": sessions,
        "sign_ins": safety_selectors.sign_in_history(user=user, limit=HISTORY_ON_PAGE),
        "anti_phishing_form": anti_phishing_form
        or AntiPhishingForm(initial={"code": user.anti_phishing_code}, two_factor=two_factor_enabled(user=user)),
    }


@login_required
@require_POST
def session_revoke(request, session_id: int):
    current = safety_selectors.current_session_id(request)
    try:
        session = safety_services.user_session_revoke(user=request.user, session_id=session_id)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("web:account")
    if session.pk == current:
        return redirect("web:login")
    messages.success(request, f"Signed out {session.device or 'the session'}.")
    return redirect("web:account")


@login_required
@require_POST
def sessions_revoke_others(request):
    revoked = safety_services.user_sessions_revoke_others(
        user=request.user, keep_session_id=safety_selectors.current_session_id(request)
    )
    messages.success(request, f"Signed out {revoked} other session{'' if revoked == 1 else 's'}.")
    return redirect("web:account")
