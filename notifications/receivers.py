"""Turns account events into in-app notifications."""

from django.dispatch import receiver

from accounts import signals
from accounts.models import KycStatus

from .services import notification_create


@receiver(signals.kyc_decided)
def on_kyc_decided(sender, profile, actor=None, **kwargs):
    if profile.status == KycStatus.APPROVED:
        notification_create(
            user=profile.user,
            kind="kyc_approved",
            title="Identity verified",
            body="Your identity verification was approved. Withdrawals and higher limits are now available.",
        )
    else:
        notification_create(
            user=profile.user,
            kind="kyc_rejected",
            title="Identity verification rejected",
            body=f"Reason: {profile.rejection_reason}. You can correct your details and submit again.",
        )


@receiver(signals.two_factor_changed)
def on_two_factor_changed(sender, user, change, **kwargs):
    titles = {
        "enabled": "Two-factor authentication turned on",
        "replaced": "Your authenticator device was replaced",
        "disabled": "Two-factor authentication turned off",
    }
    notification_create(
        user=user,
        kind=f"2fa_{change}",
        title=titles[change],
        body="If this was not you, contact support immediately.",
    )


@receiver(signals.password_changed)
def on_password_changed(sender, user, **kwargs):
    notification_create(
        user=user,
        kind="password_changed",
        title="Your password was changed",
        body="If this was not you, contact support immediately. Withdrawals are paused for 24 hours.",
    )
