"""A submitted KYC name is screened once the submission commits (by a Celery task, so the
trader's request never waits on the list)."""

from __future__ import annotations

import logging

from django.db import transaction

logger = logging.getLogger(__name__)


def on_kyc_submitted(sender, profile=None, **kwargs):
    if profile is None or not profile.full_name:
        return
    from .tasks import sanctions_kyc_screen

    user_id, name, reference = profile.user_id, profile.full_name, f"kyc:{profile.pk}:{profile.submitted_at}"

    def send():
        try:
            sanctions_kyc_screen.delay(user_id, name, reference)
        except Exception:
            # the broker is down: screen here rather than not at all
            logger.exception("KYC sanctions screening of user %s not queued; screening now", user_id)
            sanctions_kyc_screen(user_id, name, reference)

    transaction.on_commit(send)
