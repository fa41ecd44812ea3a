"""Read-only admin of the spot exchange: only order entry and the engine runner write spot
orders and trades."""

from django.contrib import admin

from trading.admin import ReadOnlyModelAdmin

from .models import EngineState, SpotOrder, SpotTrade


@admin.register(SpotOrder)
class SpotOrderAdmin(ReadOnlyModelAdmin):
    list_display = (
        "id",
        "user",
        "symbol",
        "side",
        "type",
        "time_in_force",
        "status",
        "price",
        "quantity",
        "filled_quantity",
        "hold_amount",
        "hold_asset",
        "route",
        "created_at",
    )
    list_filter = ("status", "symbol", "side", "type", "route")
    search_fields = ("id", "client_order_id", "user__email")
    list_select_related = ("user",)


@admin.register(SpotTrade)
class SpotTradeAdmin(ReadOnlyModelAdmin):
    list_display = (
        "id",
        "symbol",
        "seq",
        "price",
        "quantity",
        "taker_side",
        "maker_order",
        "taker_order",
        "maker_fee",
        "taker_fee",
        "created_at",
    )
    list_filter = ("symbol", "taker_side")
    search_fields = ("maker_order__id", "taker_order__id", "maker_user__email", "taker_user__email")
    raw_id_fields = ("maker_order", "taker_order", "maker_user", "taker_user")


@admin.register(EngineState)
class EngineStateAdmin(ReadOnlyModelAdmin):
    list_display = ("symbol", "seq", "last_price", "updated_at")
