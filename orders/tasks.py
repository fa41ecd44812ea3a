"""The orders app's Celery tasks, by product (Celery's autodiscovery imports this module).
Task names stay ``orders.tasks.*``: beat entries and queued messages name them."""

from .options.tasks import option_quotes_purge, options_expire
from .spot.tasks import smart_order_route, smart_orders_resolve

__all__ = ["option_quotes_purge", "options_expire", "smart_order_route", "smart_orders_resolve"]
