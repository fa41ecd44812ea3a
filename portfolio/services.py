"""Portfolio writes: a rebalance placed through spot order entry as one idempotent batch, and
the trader's saved targets.

A rebalance is planned once (``rebalance_selectors.rebalance_preview``) and stored with its
batch before any order goes out; its orders are then entered one by one through
``orders.spot.services.spot_order_place`` (the service ``POST /api/v1/orders`` calls, with
every pre-trade risk check), each with a client order id derived from the batch, in the
plan's order: every sell, then, once the sells have traded, every buy. A buy spends its
planned USDT as a market order by quote amount, no more than is available when it goes
out, so a sell that fetched less than estimated never leaves a buy short of funds.

Idempotency: the trader's ``client_id`` names the batch. A replay returns the batch as it
stands and enters nothing; the same id with other targets is a 409. A batch whose request
died while placing (its process killed) is picked up by the next replay after
``PORTFOLIO_REBALANCE_RESUME_SECONDS`` and finished from its stored plan: the derived order
ids make each order go in once.

Refusals: a trading state that stops any order of the plan refuses the whole batch before it
starts, and a refusal of the first order (any risk check, or funds) is the API's answer; in
both cases nothing is written. A refusal after some orders went in ends the batch
``partial``, with the refusal in its ``error``.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from ledger.selectors import balance_of
from marketdata.models import Instrument, InstrumentKind
from orders.models import LIVE_STATUSES, SpotOrder
from orders.spot import services as spot
from risk import services as risk
from trading.errors import Conflict, DomainError
from trading.idempotency import request_hash
from trading.money import quantize

from . import rebalance as core
from . import rebalance_selectors as plans
from .models import RebalanceBatch, RebalanceStatus, RebalanceTargets

PENDING, PLACED, REFUSED, SKIPPED = "pending", "placed", "refused", "skipped"


def request_fingerprint(targets: dict[str, Decimal], tolerance: Decimal) -> str:
    weights = {asset: f"{weight.normalize():f}" for asset, weight in sorted(targets.items())}
    return request_hash(json.dumps(weights, sort_keys=True), f"{tolerance.normalize():f}")


def targets_json(targets: dict[str, Decimal]) -> dict[str, str]:
    return {asset: f"{weight.normalize():f}" for asset, weight in sorted(targets.items())}


def rebalance_targets_save(*, user: User, targets: dict[str, Decimal], tolerance: Decimal) -> RebalanceTargets:
    """Keep ``targets`` (validated) as the trader's: the page's drift suggestion measures against them."""
    with transaction.atomic(durable=True):
        row, _ = RebalanceTargets.objects.update_or_create(
            user=user, defaults={"targets": targets_json(targets), "tolerance": tolerance}
        )
    return row


def rebalance_place(
    *, user: User, targets: dict[str, Decimal], tolerance: Decimal, client_id: str
) -> tuple[RebalanceBatch, bool]:
    """Plan and place a rebalance as one batch named by ``client_id``; returns ``(batch, replayed)``."""
    fingerprint = request_fingerprint(targets, tolerance)
    existing = RebalanceBatch.objects.filter(user=user, client_id=client_id).first()
    if existing is not None:
        return _replay(existing, fingerprint), True

    preview = plans.rebalance_preview(user=user, targets=targets, tolerance=tolerance)
    for order in preview.orders:
        base = order.symbol.split("-")[0]
        risk.state_precheck(symbols=(order.symbol, base), user_id=user.pk, reduces=order.side == core.SELL)
    try:
        with transaction.atomic(durable=True):
            batch = RebalanceBatch.objects.create(
                user=user,
                client_id=client_id,
                request_hash=fingerprint,
                targets=targets_json(targets),
                tolerance=tolerance,
                status=RebalanceStatus.PLACING if preview.orders else RebalanceStatus.NOTHING_TO_DO,
                value_usdt=preview.value_usdt,
                drift_before=preview.drift_before,
                drift_after=preview.drift_after,
                orders=[{**order.as_json(), "state": PENDING, "order_id": None} for order in preview.orders],
            )
    except IntegrityError:
        # the same client_id raced this request to the insert: the other one places it
        existing = RebalanceBatch.objects.filter(user=user, client_id=client_id).first()
        if existing is None:
            raise
        return _replay(existing, fingerprint), True
    if preview.orders:
        _advance(batch, first=True)
    rebalance_targets_save(user=user, targets=targets, tolerance=tolerance)
    return batch, False


def _replay(batch: RebalanceBatch, fingerprint: str) -> RebalanceBatch:
    if batch.request_hash != fingerprint:
        raise Conflict(
            "This client_id was used for a rebalance with other targets.",
            code="idempotency_conflict",
            fields={"client_id": ["Already used for other targets."]},
        )
    if batch.status == RebalanceStatus.PLACING:
        _resume_if_abandoned(batch)
        batch.refresh_from_db()
    return batch


def _resume_if_abandoned(batch: RebalanceBatch) -> None:
    """Finish a batch whose request stopped while placing: claimed by one replay at a time
    (the claim moves ``updated_at``, so a second replay sees a batch in progress)."""
    cutoff = timezone.now() - timezone.timedelta(seconds=settings.PORTFOLIO_REBALANCE_RESUME_SECONDS)
    claimed = RebalanceBatch.objects.filter(pk=batch.pk, status=RebalanceStatus.PLACING, updated_at__lt=cutoff).update(
        updated_at=timezone.now()
    )
    if claimed:
        batch.refresh_from_db()
        _advance(batch, first=False)


def _groups(entries: list[dict]) -> list[list[int]]:
    """Indexes of the batch's orders in runs of one side, in the plan's order."""
    runs: list[list[int]] = []
    for n, entry in enumerate(entries):
        if runs and entries[runs[-1][0]]["side"] == entry["side"]:
            runs[-1].append(n)
        else:
            runs.append([n])
    return runs


def _child_id(batch: RebalanceBatch, n: int) -> str:
    return f"rebalance:{batch.pk}:{n}"


def _advance(batch: RebalanceBatch, *, first: bool) -> None:
    """Enter the batch's pending orders, a run of one side at a time: a run waits until the
    orders before it have traded (sells first, so their USDT exists when the buys go)."""
    user = batch.user
    deadline = time.monotonic() + settings.PORTFOLIO_REBALANCE_WAIT_SECONDS
    entries = [dict(entry) for entry in batch.orders]
    for run in _groups(entries):
        earlier = [e["order_id"] for e in entries[: run[0]] if e.get("order_id")]
        if earlier and not _traded(earlier, deadline):
            _finish(batch, entries, RebalanceStatus.PARTIAL, error=_waited())
            return
        for n in run:
            entry = entries[n]
            if entry["state"] != PENDING:
                continue
            try:
                order = _enter(batch, n, entry, user)
            except DomainError as refused:
                if first and not any(e["state"] == PLACED for e in entries):
                    # nothing of the batch went in: the refusal is the answer, and no trace stays
                    RebalanceBatch.objects.filter(pk=batch.pk).delete()
                    raise
                entry.update(state=REFUSED, error=_error(refused))
                _finish(batch, entries, RebalanceStatus.PARTIAL, error=_error(refused))
                return
            if order is None:
                entry.update(state=SKIPPED, error=dict(_NOTHING_TO_SPEND))
            else:
                entry.update(state=PLACED, order_id=order.pk, client_order_id=_child_id(batch, n))
            _save(batch, entries)
    # the last run: wait (within the same time) so the answer shows what the orders did
    _traded([e["order_id"] for e in entries if e.get("order_id")], deadline)
    # a buy left out for want of USDT makes the batch partial, with its reason
    short = next((e for e in entries if e["state"] != PLACED), None)
    _finish(
        batch,
        entries,
        RebalanceStatus.PLACED if short is None else RebalanceStatus.PARTIAL,
        error=None if short is None else short["error"],
    )


_NOTHING_TO_SPEND = {
    "code": "nothing_to_spend",
    "message": "The sells left less USDT than this buy's minimum order value.",
    "fields": {},
}


def _enter(batch: RebalanceBatch, n: int, entry: dict, user: User) -> SpotOrder | None:
    """Enter one planned order (or find it entered by an earlier attempt)."""
    client_order_id = _child_id(batch, n)
    entered = SpotOrder.objects.filter(user=user, client_order_id=client_order_id).first()
    if entered is not None:
        return entered
    fields = {"symbol": entry["symbol"], "side": entry["side"], "type": "market", "client_order_id": client_order_id}
    if entry["side"] == core.SELL:
        fields["quantity"] = entry["quantity"]
    else:
        # what was planned, or what there is if the sells fetched less
        available = balance_of(user=user, asset=core.QUOTE).available
        spend = min(Decimal(entry["quote_quantity"]), quantize(core.QUOTE, available))
        if spend <= 0 or spend < _minimum(user, entry["symbol"]):
            return None
        fields["quote_quantity"] = f"{spend:f}"
    order, _ = spot.spot_order_place(user=user, request=spot.order_request(**fields))
    return order


def _minimum(user: User, symbol: str) -> Decimal:
    instrument = Instrument.objects.get(symbol=symbol, kind=InstrumentKind.SPOT)
    return risk.spot_limits(user, instrument, ("min_notional",))["min_notional"] or Decimal(0)


def _traded(order_ids: list[int], deadline: float) -> bool:
    """Wait until none of ``order_ids`` is live (market orders end at once with a live engine),
    or the deadline passes; whether they all ended."""
    delay = 0.01
    while True:
        if not SpotOrder.objects.filter(pk__in=order_ids, status__in=LIVE_STATUSES).exists():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(min(delay, max(deadline - time.monotonic(), 0)))
        delay = min(delay * 2, 0.1)


def _waited() -> dict:
    return {
        "code": "sells_pending",
        "message": "The sells had not traded in time, so the buys were not entered; preview again once they have.",
        "fields": {},
    }


def _error(refused: DomainError) -> dict:
    return {"code": refused.code, "message": refused.message, "fields": refused.fields}


def _save(batch: RebalanceBatch, entries: list[dict]) -> None:
    batch.orders = entries
    RebalanceBatch.objects.filter(pk=batch.pk).update(orders=entries, updated_at=timezone.now())


def _finish(batch: RebalanceBatch, entries: list[dict], status: str, *, error: dict | None) -> None:
    for entry in entries:
        if entry["state"] == PENDING:
            entry.update(state=SKIPPED)
    batch.orders, batch.status, batch.error = entries, status, error
    RebalanceBatch.objects.filter(pk=batch.pk).update(
        orders=entries, status=status, error=error, updated_at=timezone.now()
    )
    batch.refresh_from_db(fields=["updated_at"])
