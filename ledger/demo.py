"""Demo balances for ``manage.py seed_demo``: deposits with fixed txids, so re-seeding credits nothing twice."""

from decimal import Decimal

from accounts.demo import DEMO_TRADER
from accounts.models import User

from .services import deposit_credit

DEMO_FUNDS = {"USDT": Decimal("25000"), "BTC": Decimal("0.75"), "ETH": Decimal("8")}


def seed(out) -> None:
    trader = User.objects.filter(email=DEMO_TRADER).first()
    if trader is None:
        return
    for asset, amount in DEMO_FUNDS.items():
        deposit_credit(user=trader, asset=asset, amount=amount, txid=f"demo-seed-{asset}")
    out.write("    demo balances: " + ", ".join(f"{amount:f} {asset}" for asset, amount in DEMO_FUNDS.items()))
