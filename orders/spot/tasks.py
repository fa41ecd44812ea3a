"""Celery tasks of the spot exchange: thin, they call a service."""

from __future__ import annotations

from celery import shared_task

from .services.routing import smart_order_route as route_children
from .services.routing import venue_orders_resolve


@shared_task(name="orders.tasks.smart_orders_resolve", time_limit=60, acks_late=True)
def smart_orders_resolve() -> int:
    """Every few seconds: look up venue children whose reply was lost, and close the smart
    orders whose children are all final."""
    return venue_orders_resolve()


@shared_task(name="orders.tasks.smart_order_route", time_limit=120, acks_late=True)
def smart_order_route(parent_id: int) -> str:
    """A smart order's children go to work (queued when the order is entered)."""
    return route_children(parent_id=parent_id).status
