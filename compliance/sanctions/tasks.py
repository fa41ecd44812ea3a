from __future__ import annotations

from celery import shared_task


@shared_task(name="compliance.sanctions_kyc_screen", acks_late=True)
def sanctions_kyc_screen(user_id: int, full_name: str, reference: str) -> bool:
    """Screen a submitted KYC name; True when it hit. Safe to run twice (the alert is keyed)."""
    from .services import kyc_name_screen

    return kyc_name_screen(user_id=user_id, full_name=full_name, reference=reference) is not None
