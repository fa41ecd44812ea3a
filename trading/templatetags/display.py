"""Template filters for what people read, the rules of ``trading.formatting``'s ``display_*``
helpers (and of the browser's ``frontend/lib/format.js``): ``{% load display %}`` then
``{{ b.available|amount:b.asset }}``, ``{{ t.amount|signed:t.asset }}``, ``{{ iv|percent }}``,
``{{ w.created_at|when }}``, ``{{ user.date_joined|day }}``."""

from __future__ import annotations

from django import template

from trading import formatting

register = template.Library()


@register.filter
def amount(value, asset=None):
    return formatting.display_amount(value, asset)


@register.filter
def signed(value, asset=None):
    return formatting.display_signed(value, asset)


@register.filter
def number(value, places=None):
    return formatting.display_number(value, places=None if places in (None, "") else int(places))


@register.filter
def percent(value):
    return formatting.display_percent(value)


@register.filter
def when(value):
    return formatting.display_datetime(value)


@register.filter
def day(value):
    return formatting.display_date(value)
