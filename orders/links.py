"""Where the pages show an order: the wallet's history links each movement to its order
(the ledger, a lower app, asks for them through ``trading.checks.figure("transfer_links")``)."""

from __future__ import annotations

from django.urls import reverse

from .spot.models import SpotOrder


def transfer_links(*, references) -> dict[str, str]:
    """{reference: url} for the references that name an order: ``spot_order:73`` → its
    market page (``/markets/BTC-USDT/?order=73``), ``option_order:5`` → the options page."""
    spot_ids, links = {}, {}
    for reference in references:
        kind, _, key = reference.partition(":")
        if not key.isdigit():
            continue
        if kind == "spot_order":
            spot_ids[int(key)] = reference
        elif kind in ("option_order", "option_exercise"):
            links[reference] = f"{reverse('web:options')}#{kind.replace('_', '-')}-{key}"
    for order_id, symbol in SpotOrder.objects.filter(pk__in=spot_ids).values_list("pk", "symbol"):
        links[spot_ids[order_id]] = f"{reverse('web:market', kwargs={'symbol': symbol})}?order={order_id}"
    return links
