"""The demo investor ``manage.py seed_demo`` adds (portfolio/demo.py): a week of history made
by the platform's own services at past moments, which the ledger audit, the Portfolio's
figures and the equity curve all read as any trader's; seeding again adds nothing."""

from __future__ import annotations

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.models import User
from ledger.models import Transfer
from ledger.selectors import balance_of
from orders.models import LIVE_STATUSES, OptionOrder, SpotOrder, SpotTrade
from portfolio import rebalance_selectors, selectors, snapshots
from portfolio.demo import DEMO_INVESTOR

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def test_the_demo_investor_has_a_week_of_history_that_reconciles():
    said = seed()
    assert f"demo investor: {DEMO_INVESTOR}" in said
    investor = User.objects.get(email=DEMO_INVESTOR)
    now = timezone.now()

    # spot buys and sells on several past days, each matched on the book
    trades = SpotTrade.objects.filter(taker_user=investor).order_by("created_at")
    assert trades.count() == 6
    days = {trade.created_at.date() for trade in trades}
    assert len(days) >= 4 and min(trades.values_list("created_at", flat=True)) < now - timezone.timedelta(days=5)
    assert {order.side for order in SpotOrder.objects.filter(user=investor)} == {"buy", "sell"}
    # nothing of the story is left resting, the maker's quotes included
    assert not SpotOrder.objects.filter(status__in=LIVE_STATUSES, client_order_id="").exists()
    # a call bought and closed, a put still open
    options = list(OptionOrder.objects.filter(user=investor).order_by("created_at"))
    assert [(o.side, o.series[-1]) for o in options] == [("buy", "C"), ("sell", "C"), ("buy", "P")]
    assert options[0].created_at < options[1].created_at < now - timezone.timedelta(hours=12)
    # deposits on their days, and the balances are what the story adds up to
    deposits = Transfer.objects.filter(code="deposit", credit_account__user=investor)
    assert deposits.count() == 3 and len({t.created_at.date() for t in deposits}) == 3
    usdt, btc = balance_of(user=investor, asset="USDT").total, balance_of(user=investor, asset="BTC").total
    bought_btc = Decimal("0.15") + Decimal("0.04") + Decimal("0.01")
    assert btc == bought_btc * (1 - Decimal("0.002")) + Decimal("0.05") - Decimal("0.06")
    assert 0 < usdt < Decimal("22500")

    # the Portfolio's figures: realized and unrealized PnL, option positions, a daily equity curve
    valuation = selectors.portfolio_of(user=investor, method="fifo")
    assert valuation.realized_pnl_usdt != 0
    assert {p.option_type for p in valuation.options.positions if p.contracts} == {"P"}
    performance = snapshots.performance_of(user=investor, period="30d")
    assert len(performance.points) >= 7 and performance.twr is not None
    # saved targets it has drifted from: the page says so
    advice = rebalance_selectors.advice_of(user=investor)
    assert advice.targets == {"BTC": Decimal("0.4"), "ETH": Decimal("0.2"), "USDT": Decimal("0.4")}
    assert [s.kind for s in advice.suggestions][:1] == ["drift"]

    # seeding again changes nothing
    counts = (SpotOrder.objects.count(), Transfer.objects.count(), OptionOrder.objects.count())
    assert "already seeded" in seed()
    assert (SpotOrder.objects.count(), Transfer.objects.count(), OptionOrder.objects.count()) == counts
