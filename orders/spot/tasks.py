"""Celery tasks of the spot exchange: thin, they call a service."""

from __future__ import annotations

from celery import shared_task



@shared_task(name="orders.tasks.smart_orders_resolve", time_limit=60, acks_late=True)
def smart_orders_resolve() -> int:
    """Every few seconds: look up venue children whose reply was lost, and close the smart
    orders whose children are all final."""
    from .services.routing import venue_orders_resolve

    return venue_orders_resolve()
