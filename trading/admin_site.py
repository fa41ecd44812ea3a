"""The staff console: Django admin behind a verified OTP device (django-otp)."""

from django_otp.admin import OTPAdminSite


class PlatformAdminSite(OTPAdminSite):
    site_header = "Meridian Exchange — staff console"
    site_title = "Staff console"
    index_title = "Operations and compliance"
    login_template = "admin/otp_login.html"
