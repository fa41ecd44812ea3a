"""RFQ: a firm price from the market maker for a block, then its acceptance.

The price is what the market maker could do the block for outside: the VWAP of the quantity
across the aggregated book (our book and every venue; asks for a buyer, bids for a seller),
made worse for the taker by ``RFQ_SPREAD_BPS`` and rounded to the tick in the market maker's
favour. It holds for ``RFQ_TTL_SECONDS``.

Accepting exchanges the assets between the trader and the market maker user
(``settings.MARKET_MAKER_EMAIL``) at exactly that price, in one transaction with the quote's
row locked: ledger ids ``rfq:<quote>:quote`` (USDT) and ``rfq:<quote>:base`` (BTC/ETH). If
either side lacks the funds the ledger refuses (409 ``insufficient_funds``) and nothing is
written. A quote is used once: a second accept is 409 ``quote_used``, unless it carries the
same ``Idempotency-Key`` as the first, which replays the original result.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from accounts.selectors import user_lock_read
from ledger.selectors import total_read
from ledger.services import TransferRequest, transfers_execute, user_account
from risk import core as risk_core
from risk import services as risk
from trading.db import read_together
from trading.errors import Conflict, DomainError, ValidationFailed
from trading.money import parse_decimal, quantize

from ..engine import BUY, SELL
from ..models import RfqQuote
from ..notices import block_trade_told
from ..routing_selectors import route_sources
from ..selectors import live_orders_read
from .entry import spot_instrument

BPS = Decimal(10_000)


class QuoteExpired(DomainError):
    status = 409
    code = "quote_expired"


class RfqUnavailable(DomainError):
    status = 503
    code = "rfq_unavailable"


def _market_maker() -> User:
    maker = User.objects.filter(email=settings.MARKET_MAKER_EMAIL).first()
    if maker is None:
        raise RfqUnavailable("No market maker is quoting right now; try again later.")
    return maker


def _vwap(levels, quantity: Decimal) -> Decimal | None:
    left, cost = quantity, Decimal(0)
    for price, available in levels:
        take = min(left, available)
        cost += price * take
        left -= take
        if left <= 0:
            return cost / quantity
    return None


def rfq_quote_create(*, user, symbol: str, side: str, quantity) -> RfqQuote:
    """A firm price for ``quantity`` (a decimal string) of ``symbol``; the pair, the size
    and the order value are checked as order entry checks them."""
    instrument = spot_instrument(symbol)
    symbol = instrument.symbol
    if side not in (BUY, SELL):
        raise ValidationFailed("side must be buy or sell.", fields={"side": ["buy or sell."]})
    quantity = parse_decimal(quantity, field="quantity", step=instrument.lot_size, what="lot size")
    _market_maker()
    sources, _ = route_sources(symbol=symbol, depth=settings.SMART_ROUTE_DEPTH)
    levels = sorted(
        ((price, qty) for s in sources for price, qty in (s.asks if side == BUY else s.bids)),
        key=lambda level: level[0],
        reverse=side == SELL,
    )
    vwap = _vwap(levels, quantity)
    if vwap is None:
        raise Conflict("There is not enough liquidity to quote that size.", code="insufficient_liquidity")
    spread = Decimal(settings.RFQ_SPREAD_BPS) / BPS
    tick = instrument.tick_size
    if side == BUY:
        price = (vwap * (1 + spread) / tick).to_integral_value(ROUND_CEILING) * tick
    else:
        price = (vwap * (1 - spread) / tick).to_integral_value(ROUND_FLOOR) * tick
    risk.notional_check(user=user, instrument=instrument, notional=price * quantity)
    now = timezone.now()
    return RfqQuote.objects.create(
        user=user,
        symbol=symbol,
        side=side,
        quantity=quantity,
        price=price,
        reference_price=vwap.quantize(Decimal("0.00000001")),
        created_at=now,
        expires_at=now + timedelta(seconds=settings.RFQ_TTL_SECONDS),
    )


def rfq_quote_accept(*, user, quote_id, idempotency_key: str = "", now=None) -> tuple[RfqQuote, bool]:
    """Execute the quote at its price; returns ``(quote, replayed)``."""
    from ..routing_selectors import rfq_quote_get

    found = rfq_quote_get(user=user, quote_id=quote_id)  # another trader's quote: 404 before any lock
    maker = _market_maker()
    if found.accepted_at is None:
        risk.order_rate_take(user=user)
    with transaction.atomic(durable=True):
        quote = RfqQuote.objects.select_for_update().get(pk=quote_id)
        if quote.accepted_at is not None:
            if idempotency_key and idempotency_key == quote.accept_key:
                return quote, True
            raise Conflict("This quote was already accepted.", code="quote_used")
        if (now or timezone.now()) >= quote.expires_at:
            raise QuoteExpired("The quote has expired; ask for a new one.")
        instrument = spot_instrument(quote.symbol)
        # the trader's row, as order entry locks it (their limits are decided one at a time),
        # and what the risk checks read under it
        _, state, (_, buying), base_held = read_together(
            user_lock_read(user_id=user.pk),
            risk.spot_state_read(user_id=user.pk, instrument=instrument),
            live_orders_read(user_id=user.pk, symbol=instrument.symbol),
            total_read(user_id=user.pk, asset=instrument.base),
        )
        risk.spot_order_admit(
            user=user,
            instrument=instrument,
            order=risk_core.SpotOrder(
                side=quote.side, type="limit", quantity=quote.quantity, notional=quote.price * quote.quantity
            ),
            state=state,
            # a block trade leaves nothing open; the trader's open buys count in their position
            usage=risk_core.SpotUsage(open_orders=0, base_held=base_held, open_buys=buying),
            operation=f"rfq:{quote.pk}",
        )
        base = quote.symbol.split("-")[0]
        buyer, seller = (user.pk, maker.pk) if quote.side == BUY else (maker.pk, user.pk)
        # one amount both ways; the cent-micro goes to the market maker
        amount = quantize(
            "USDT", quote.price * quote.quantity, rounding=ROUND_CEILING if quote.side == BUY else ROUND_FLOOR
        )
        ref = f"rfq:{quote.pk}"
        transfers_execute(
            [
                TransferRequest(
                    id=f"rfq:{quote.pk}:quote",
                    code="rfq_trade",
                    asset="USDT",
                    amount=amount,
                    debit=user_account(user_id=buyer, asset="USDT"),
                    credit=user_account(user_id=seller, asset="USDT"),
                    reference=ref,
                ),
                TransferRequest(
                    id=f"rfq:{quote.pk}:base",
                    code="rfq_trade",
                    asset=base,
                    amount=quote.quantity,
                    debit=user_account(user_id=seller, asset=base),
                    credit=user_account(user_id=buyer, asset=base),
                    reference=ref,
                ),
            ]
        )
        quote.accepted_at = timezone.now()
        quote.accept_key = (idempotency_key or "")[:64]
        quote.quote_amount = amount
        quote.save(update_fields=["accepted_at", "accept_key", "quote_amount"])
        block_trade_told(quote)
    return quote, False
