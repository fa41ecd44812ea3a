"""Read-only admin of the exchange: staff look; only order entry and the engine runner write
spot orders and trades, and only the counter, the expiry run and the back office
(settlement_state) write the options records."""

from django.contrib import admin

from trading.admin import ReadOnlyModelAdmin

from .models import EngineState, OptionExercise, OptionOrder, OptionPosition, OptionQuote, SpotOrder, SpotTrade


@admin.register(OptionQuote)
class OptionQuoteAdmin(ReadOnlyModelAdmin):
    list_display = ("id", "user", "series", "side", "contracts", "price_usdt", "total_usdt", "index_price", "created_at", "expires_at")
    list_filter = ("underlying", "side")
    search_fields = ("id", "series", "user__email")
    list_select_related = ("user",)


@admin.register(OptionOrder)
class OptionOrderAdmin(ReadOnlyModelAdmin):
    list_display = (
        "id", "user", "series", "side", "contracts", "price_usdt", "total_usdt", "index_price",
        "realized_pnl_usdt", "settlement_state", "created_at",
    )
    list_filter = ("settlement_state", "side", "underlying")
    search_fields = ("id", "series", "client_order_id", "user__email")
    list_select_related = ("user",)


@admin.register(OptionPosition)
class OptionPositionAdmin(ReadOnlyModelAdmin):
    list_display = ("id", "user", "series", "status", "contracts", "average_price_usdt", "cost_usdt", "realized_pnl_usdt", "updated_at")
    list_filter = ("status", "underlying")
    search_fields = ("series", "user__email")
    list_select_related = ("user",)


@admin.register(OptionExercise)
class OptionExerciseAdmin(ReadOnlyModelAdmin):
    list_display = (
        "id", "user", "series", "outcome", "contracts", "settlement_price", "payout_usdt", "realized_pnl_usdt",
        "settlement_state", "created_at",
    )
    list_filter = ("outcome", "settlement_state", "underlying")
    search_fields = ("series", "user__email")
    list_select_related = ("user",)


@admin.register(SpotOrder)
class SpotOrderAdmin(ReadOnlyModelAdmin):
    list_display = (
        "id", "user", "symbol", "side", "type", "time_in_force", "status", "price", "quantity", "filled_quantity",
        "hold_amount", "hold_asset", "route", "created_at",
    )
    list_filter = ("status", "symbol", "side", "type", "route")
    search_fields = ("id", "client_order_id", "user__email")
    list_select_related = ("user",)


@admin.register(SpotTrade)
class SpotTradeAdmin(ReadOnlyModelAdmin):
    list_display = ("id", "symbol", "seq", "price", "quantity", "taker_side", "maker_order", "taker_order",
                    "maker_fee", "taker_fee", "created_at")
    list_filter = ("symbol", "taker_side")
    search_fields = ("maker_order__id", "taker_order__id", "maker_user__email", "taker_user__email")
    raw_id_fields = ("maker_order", "taker_order", "maker_user", "taker_user")


@admin.register(EngineState)
class EngineStateAdmin(ReadOnlyModelAdmin):
    list_display = ("symbol", "seq", "last_price", "updated_at")
