"""The market maker's user and funds for ``manage.py seed_demo``: a system trader with no
usable password, funded by deposits with fixed txids (re-seeding credits nothing twice)."""

from decimal import Decimal

from django.conf import settings
from django.db import transaction

from accounts.models import User
from ledger.services import deposit_credit

# Enough for both ladders at their default depth many times over, and for the inventory to
# swing while traders hit one side for a while.
MARKET_MAKER_FUNDS = {"USDT": Decimal("5000000"), "BTC": Decimal("50"), "ETH": Decimal("1000")}


def seed(out) -> None:
    with transaction.atomic():
        maker, created = User.objects.get_or_create(
            email=settings.MARKET_MAKER_EMAIL,
            defaults={"first_name": "Market", "last_name": "Maker", "is_staff": False},
        )
        if created:
            maker.set_unusable_password()
            maker.save(update_fields=["password"])
    for asset, amount in MARKET_MAKER_FUNDS.items():
        deposit_credit(user=maker, asset=asset, amount=amount, txid=f"demo-market-maker-{asset}")
    out.write(
        f"    market maker: {maker.email} funded with "
        + ", ".join(f"{amount:f} {asset}" for asset, amount in MARKET_MAKER_FUNDS.items())
    )
