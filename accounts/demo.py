"""Demo users for ``manage.py seed_demo``."""

import os

from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from .models import KycProfile, KycStatus, User

DEMO_TRADER = "demo@meridian.test"
DEMO_STAFF = "staff@meridian.test"


def seed(out) -> None:
    password = os.environ.get("DEMO_PASSWORD", "demo-Trader-2026")
    staff_password = os.environ.get("DEMO_STAFF_PASSWORD", "demo-Staff-2026")
    with transaction.atomic():
        trader, created = User.objects.get_or_create(
            email=DEMO_TRADER, defaults={"first_name": "Dana", "last_name": "Demo"}
        )
        if created:
            trader.set_password(password)
            trader.save()
        KycProfile.objects.update_or_create(
            user=trader,
            defaults={"status": KycStatus.APPROVED, "full_name": "Dana Demo", "country": "DE"},
        )
        staff, created = User.objects.get_or_create(email=DEMO_STAFF, defaults={"is_staff": True, "is_superuser": True})
        if created:
            staff.set_password(staff_password)
            staff.save()
        KycProfile.objects.get_or_create(user=staff)
        device = TOTPDevice.objects.filter(user=staff, confirmed=True).first()
        if device is None:
            device = TOTPDevice.objects.create(user=staff, name="authenticator", confirmed=True)
    out.write(f"    demo trader : {DEMO_TRADER} / {password}   (2FA off, KYC approved)")
    out.write(f"    staff (admin): {DEMO_STAFF} / {staff_password}   (admin needs a 2FA code:")
    out.write(f"                   add {device.config_url} to an authenticator app,")
    out.write(
        f"                   or print the current code: .venv/bin/python manage.py demo_otp --email {DEMO_STAFF})"
    )
