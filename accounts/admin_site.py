"""The staff console: Django admin behind a verified OTP device (django-otp)."""

from django import forms
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite
from django_otp.plugins.otp_totp.models import TOTPDevice

from trading import staff_queues
from trading.errors import DomainError

from . import services


class StaffLoginForm(OTPAdminAuthenticationForm):
    """Email, password and the code of the staff member's authenticator, in one step.

    Staff have one TOTP device, so it is chosen for them; the code is checked by the same
    single-use, throttled verification as every other sign-in.
    """

    def _chosen_device(self, user):
        return (
            super()._chosen_device(user) or TOTPDevice.objects.filter(user=user, confirmed=True).order_by("id").first()
        )

    def _verify_token(self, user, token, device=None):
        if device is None:
            raise forms.ValidationError(
                "This account has no authenticator yet: set up 2FA on your account page first.", code="no_device"
            )
        try:
            return services.otp_check(user=user, otp=token)
        except DomainError as exc:
            raise forms.ValidationError(exc.message, code=exc.code) from exc


class PlatformAdminSite(OTPAdminSite):
    site_header = "Meridian Exchange — staff console"
    site_title = "Staff console"
    index_title = "Operations and compliance"
    login_template = "admin/otp_login.html"
    login_form = StaffLoginForm
    index_template = "admin/platform_index.html"

    def index(self, request, extra_context=None):
        """The console's front page, with what waits for staff at the top."""
        return super().index(request, {"waiting": staff_queues.waiting(), **(extra_context or {})})
