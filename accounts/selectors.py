"""Account reads."""

from __future__ import annotations

from django.db import connection

from trading.db import Read, sql_int

from .models import KycProfile, KycStatus, User
from .otp import two_factor_enabled

REQUEST_KYC_TIER = "request_kyc_tier"  # set on the request's user by the authentication


def user_lock_read(*, user_id: int) -> Read:
    """Lock the trader's row (FOR NO KEY UPDATE) until the transaction ends, as the first of
    the reads order entry sends together (``trading.db.read_together``): their entries are
    decided one at a time. NO KEY: the foreign-key checks of other writers (the engine
    runner's trades reference the user) do not wait on it."""
    lock = " FOR NO KEY UPDATE" if connection.vendor == "postgresql" else ""
    return Read.one(f"SELECT id FROM {User._meta.db_table} WHERE id = {sql_int(user_id)}{lock}")


def kyc_profile_for(*, user: User) -> KycProfile:
    profile = KycProfile.objects.filter(user=user).first()
    return profile or KycProfile(user=user, status=KycStatus.NONE)


def kyc_tier(*, user: User) -> int:
    return kyc_profile_for(user=user).tier


def kyc_tier_loaded(*, user: User) -> int | None:
    """The tier read with the user by this request's authentication (the API's bearer tokens
    join the KYC profile: ``accounts.jwt_auth``), or None. Only the request's own user object
    carries it, so a long-lived user object never answers an old tier."""
    return getattr(user, REQUEST_KYC_TIER, None)


def kyc_tier_from_joined(*, user: User) -> int:
    """The tier of a user read with ``select_related("kyc")``."""
    try:
        return user.kyc.tier
    except KycProfile.DoesNotExist:  # none yet
        return KycProfile(status=KycStatus.NONE).tier


def user_profile(*, user: User) -> dict:
    kyc = kyc_profile_for(user=user)
    return {
        "id": user.pk,
        "email": user.email,
        "date_joined": user.date_joined,
        "is_staff": user.is_staff,
        "two_factor_enabled": two_factor_enabled(user=user),
        "kyc": {
            "status": kyc.status,
            "tier": kyc.tier,
            "submitted_at": kyc.submitted_at,
            "decided_at": kyc.decided_at,
            "rejection_reason": kyc.rejection_reason,
        },
        "kyc_status": kyc.status,
        "kyc_tier": kyc.tier,
    }


def kyc_review_queue():
    return KycProfile.objects.filter(status=KycStatus.PENDING).select_related("user").order_by("submitted_at", "id")


def sign_in_seen(*, user_id: int, ip: str | None, device: str) -> bool | None:
    """Whether the account signed in before from this device (``devices.device_of``) at this
    address, from its sign-ins in the audit trail; None when it never signed in (its first
    sign-in, right after signing up). A sign-in recorded before devices were (no ``device``
    in its data) counts for its address alone."""
    from trading.models import AuditRecord

    earlier = AuditRecord.objects.filter(
        target_type=User._meta.label_lower, target_id=str(user_id), action="auth.login"
    )
    if not earlier.exists():
        return None
    for data in earlier.filter(ip=ip).values_list("data", flat=True).iterator():
        if (data or {}).get("device", device) == device:
            return True
    return False
