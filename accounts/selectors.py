"""Account reads."""

from __future__ import annotations

from .models import KycProfile, KycStatus, User
from .services import two_factor_enabled


def kyc_profile_for(*, user: User) -> KycProfile:
    profile = KycProfile.objects.filter(user=user).first()
    return profile or KycProfile(user=user, status=KycStatus.NONE)


def kyc_tier(*, user: User) -> int:
    return kyc_profile_for(user=user).tier


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
