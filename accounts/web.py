"""Browser pages for accounts. Session auth with CSRF; the same services as the API."""

from __future__ import annotations

import time

from django.contrib import messages
from django.contrib.auth import login as session_login
from django.contrib.auth import logout as session_logout
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST
from django_otp import login as otp_login

from trading.errors import DomainError, show_on_form

from . import forms, safety_services, selectors, services
from .login_steps import PENDING_LOGIN_KEY, PENDING_LOGIN_SECONDS, landing_url, pending_login_start
from .models import KycStatus, User
from .social_providers import login_buttons


def _safe_next(request) -> str:
    from django.utils.http import url_has_allowed_host_and_scheme

    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return landing_url()


def home(request):
    return render(request, "home.html")


@require_http_methods(["GET", "POST"])
def signup(request):
    form = forms.SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.user_register(email=form.cleaned_data["email"], password=form.cleaned_data["password"])
        except DomainError as exc:
            show_on_form(form, exc)
        else:
            session_login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, "Welcome! Your account is ready. Secure it with 2FA next.")
            return redirect("web:two_factor_setup")
    return render(request, "accounts/signup.html", {"form": form})


@require_http_methods(["GET", "POST"])
def login_view(request):
    form = forms.LoginForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.user_authenticate(
                request=request, email=form.cleaned_data["email"], password=form.cleaned_data["password"]
            )
        except DomainError as exc:
            show_on_form(form, exc)
        else:
            if services.two_factor_enabled(user=user):
                # Password is right; the session is not signed in until the code checks out.
                return pending_login_start(request, user=user, next_url=_safe_next(request))
            session_login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect(_safe_next(request))
    return render(
        request,
        "accounts/login.html",
        {"form": form, "next": request.GET.get("next", ""), "social_buttons": login_buttons()},
    )


@require_http_methods(["GET", "POST"])
def login_otp(request):
    pending = request.session.get(PENDING_LOGIN_KEY)
    if not pending or time.time() - pending["at"] > PENDING_LOGIN_SECONDS:
        request.session.pop(PENDING_LOGIN_KEY, None)
        messages.info(request, "Please sign in again.")
        return redirect("web:login")
    form = forms.OtpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = User.objects.get(pk=pending["user_id"])
        try:
            device = services.otp_check(user=user, otp=form.cleaned_data["otp"])
        except DomainError as exc:
            show_on_form(form, exc)
        else:
            request.session.pop(PENDING_LOGIN_KEY, None)
            if pending.get("provider"):
                request.sign_in_method = "oidc_2fa"
                request.sign_in_provider = pending["provider"]
            session_login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            otp_login(request, device)
            return redirect(pending.get("next") or landing_url())
    return render(request, "accounts/login_otp.html", {"form": form})


@require_POST
def logout_view(request):
    session_logout(request)
    messages.info(request, "You are signed out.")
    return redirect("web:login")


def _account_page(request, *, password_form=None, email_form=None, anti_phishing_form=None, status: int = 200):
    """The account page; its password and email forms ask for a code only with 2FA on."""
    from .safety_web import account_context

    two_factor = services.two_factor_enabled(user=request.user)
    return render(
        request,
        "accounts/account.html",
        {
            "profile": selectors.user_profile(user=request.user),
            "password_form": password_form or forms.PasswordChangeForm(two_factor=two_factor),
            "email_form": email_form or forms.EmailChangeForm(two_factor=two_factor),
            **account_context(request, anti_phishing_form=anti_phishing_form),
        },
        status=status,
    )


@login_required
def account(request):
    return _account_page(request)


@login_required
@require_POST
def password_change(request):
    form = forms.PasswordChangeForm(request.POST, two_factor=services.two_factor_enabled(user=request.user))
    if form.is_valid():
        try:
            services.password_change(
                user=request.user,
                current_password=form.cleaned_data["password"],
                new_password=form.cleaned_data["new_password"],
                otp=form.cleaned_data.get("otp"),
            )
        except DomainError as exc:
            show_on_form(form, exc)
        else:
            from django.contrib.auth import update_session_auth_hash

            update_session_auth_hash(request, request.user)
            messages.success(request, "Password changed. Withdrawals are paused for 24 hours.")
            return redirect("web:account")
    return _account_page(request, password_form=form, status=400)


@login_required
@require_POST
def email_change(request):
    form = forms.EmailChangeForm(request.POST, two_factor=services.two_factor_enabled(user=request.user))
    if form.is_valid():
        try:
            services.email_change(
                user=request.user,
                password=form.cleaned_data["password"],
                otp=form.cleaned_data.get("otp"),
                new_email=form.cleaned_data["new_email"],
            )
        except DomainError as exc:
            show_on_form(form, exc)
        else:
            messages.success(request, "Email changed.")
            return redirect("web:account")
    return _account_page(request, email_form=form, status=400)


@login_required
@require_http_methods(["GET", "POST"])
def two_factor_setup(request):
    enabled = services.two_factor_enabled(user=request.user)
    reauth_form = forms.ReauthForm(request.POST if request.POST.get("step") == "start" else None)
    confirm_form = forms.OtpForm(request.POST if request.POST.get("step") == "confirm" else None)
    setup = None

    if request.method == "GET" and not enabled:
        setup = services.two_factor_setup(user=request.user)
    elif request.POST.get("step") == "start" and reauth_form.is_valid():
        try:
            setup = services.two_factor_setup(
                user=request.user,
                password=reauth_form.cleaned_data["password"],
                otp=reauth_form.cleaned_data.get("otp"),
            )
        except DomainError as exc:
            show_on_form(reauth_form, exc)
    elif request.POST.get("step") == "confirm" and confirm_form.is_valid():
        try:
            device = services.two_factor_confirm(user=request.user, otp=confirm_form.cleaned_data["otp"])
        except DomainError as exc:
            show_on_form(confirm_form, exc)
            setup = services.pending_setup(user=request.user)
        else:
            otp_login(request, device)
            messages.success(request, "Two-factor authentication is on. You will need a code at every sign-in.")
            return redirect("web:account")
    return render(
        request,
        "accounts/two_factor_setup.html",
        {"enabled": enabled, "setup": setup, "reauth_form": reauth_form, "confirm_form": confirm_form},
    )


@login_required
@require_http_methods(["GET", "POST"])
def two_factor_disable(request):
    form = forms.ReauthForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.two_factor_disable(
                user=request.user, password=form.cleaned_data["password"], otp=form.cleaned_data.get("otp")
            )
        except DomainError as exc:
            show_on_form(form, exc)
        else:
            messages.warning(request, "Two-factor authentication is off. Withdrawals are paused for 24 hours.")
            return redirect("web:account")
    return render(request, "accounts/two_factor_disable.html", {"form": form})


@login_required
@require_http_methods(["GET", "POST"])
def kyc(request):
    profile = selectors.kyc_profile_for(user=request.user)
    can_submit = profile.status in (KycStatus.NONE, KycStatus.REJECTED)
    form = forms.KycForm(request.POST or None, request.FILES or None) if can_submit else None
    if request.method == "POST" and form is not None and form.is_valid():
        try:
            services.kyc_submit(user=request.user, **form.cleaned_data)
        except DomainError as exc:
            show_on_form(form, exc)
        else:
            messages.success(request, "Thank you. Your documents are under review.")
            return redirect("web:kyc")
    return render(request, "accounts/kyc.html", {"profile": profile, "form": form})


@login_required
@require_POST
def anti_phishing_code(request):
    from .safety_web import AntiPhishingForm

    form = AntiPhishingForm(request.POST, two_factor=services.two_factor_enabled(user=request.user))
    if form.is_valid():
        try:
            user = safety_services.anti_phishing_code_set(
                user=request.user, code=form.cleaned_data["code"], otp=form.cleaned_data.get("otp")
            )
        except DomainError as exc:
            show_on_form(form, exc)
        else:
            messages.success(
                request,
                "Anti-phishing code saved: every email from us opens with it."
                if user.anti_phishing_code
                else "Anti-phishing code removed.",
            )
            return redirect("web:account")
    return _account_page(request, anti_phishing_form=form, status=400)
