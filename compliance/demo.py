"""Demo AML cases for ``manage.py seed_demo``: two traders whose activity the rules flag, so
the case inbox in the admin has something to work on.

* ``structuring@meridian.test`` deposits four times just under 10,000 USDT and withdraws
  almost all of it at once, without trading: structuring and rapid in-and-out.
* ``mule1@``, ``mule2@`` and ``mule3@meridian.test`` sign in from one IP address, the third
  also from a high-risk country: one IP across accounts and a high-risk jurisdiction.

Made with the platform's services (deposits, a withdrawal, sign-ins recorded as the sign-in
receiver records them), then one ``aml_scan`` of the last hour raises what the real-time
path has not raised yet. Idempotent: a demo trader that exists is left as it is.
"""

from __future__ import annotations

import os
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import KycProfile, KycStatus, User
from ledger.services import deposit_credit, withdrawal_create

from .models import AmlCase
from .services import aml_rules_install_defaults, aml_scan, signin_record

STRUCTURER = "structuring@meridian.test"
MULES = ("mule1@meridian.test", "mule2@meridian.test", "mule3@meridian.test")
SHARED_IP = "203.0.113.77"
WITHDRAW_TO = "0x52908400098527886E0F7030069857D2E4169EE7"
SANCTIONS_SAMPLE = Path(__file__).resolve().parent / "sanctions" / "data" / "sample.ftm.json"


def _trader(email: str, country: str) -> tuple[User, bool]:
    password = os.environ.get("DEMO_PASSWORD", "demo-Trader-2026")
    with transaction.atomic():
        user, created = User.objects.get_or_create(email=email)
        if created:
            user.set_password(password)
            user.save()
        KycProfile.objects.update_or_create(
            user=user, defaults={"status": KycStatus.APPROVED, "full_name": email.split("@")[0], "country": country}
        )
    return user, created


def seed(out) -> None:
    aml_rules_install_defaults()
    _sanctions_sample(out)
    started = timezone.now()
    structurer, created = _trader(STRUCTURER, "NL")
    if created:
        for n, amount in enumerate(("9600", "9750", "9800", "9900"), start=1):
            deposit_credit(user=structurer, asset="USDT", amount=Decimal(amount), txid=f"demo-aml-structuring-{n}")
        withdrawal_create(user=structurer, asset="USDT", amount=Decimal("38000"), address=WITHDRAW_TO)
    high_risk = (settings.AML_HIGH_RISK_COUNTRIES or [""])[0]
    for n, email in enumerate(MULES, start=1):
        mule, created = _trader(email, "DE")
        if created:
            country = high_risk if n == len(MULES) else ""
            signin_record(user=mule, ip=SHARED_IP, user_agent=f"Mozilla/5.0 demo mule {n}", country=country)
    outcome = aml_scan(since=started - timedelta(hours=1))
    cases = AmlCase.objects.filter(user__email__in=[STRUCTURER, *MULES]).count()
    out.write(
        f"    demo AML: {cases} cases in the admin's AML case inbox ({STRUCTURER}, {MULES[-1]}); "
        f"{len(outcome.alerts)} alerts raised by the scan"
    )


def _sanctions_sample(out) -> None:
    """The shipped sample sanctions list, when no list was ever loaded (a real one loaded with
    ``manage.py sanctions_load`` is kept)."""
    from .sanctions.models import SanctionsListLoad
    from .sanctions.services import sanctions_load

    if SanctionsListLoad.objects.exists():
        return
    with SANCTIONS_SAMPLE.open(encoding="utf-8") as lines:
        load = sanctions_load(lines=lines, source="compliance/sanctions/data/sample.ftm.json")
    out.write(
        f"    demo sanctions list: {load.entities} fictional entities, {load.addresses} addresses "
        "(a withdrawal to 0x5aB1c0ffee5aB1c0ffee5aB1c0ffee5aB1c0FfEe is refused)"
    )
