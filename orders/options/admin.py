"""Read-only admin of the options counter: only the counter, the expiry run and the back
office (settlement_state) write these records."""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.urls import path, reverse

from trading.admin import ReadOnlyModelAdmin

from .models import OptionExercise, OptionOrder, OptionPosition, OptionQuote


@admin.register(OptionQuote)
class OptionQuoteAdmin(ReadOnlyModelAdmin):
    list_display = (
        "id",
        "user",
        "series",
        "side",
        "contracts",
        "price_usdt",
        "total_usdt",
        "index_price",
        "created_at",
        "expires_at",
    )
    list_filter = ("underlying", "side")
    search_fields = ("id", "series", "user__email")
    list_select_related = ("user",)


@admin.register(OptionOrder)
class OptionOrderAdmin(ReadOnlyModelAdmin):
    list_display = (
        "id",
        "user",
        "series",
        "side",
        "contracts",
        "price_usdt",
        "total_usdt",
        "index_price",
        "realized_pnl_usdt",
        "settlement_state",
        "created_at",
    )
    list_filter = ("settlement_state", "side", "underlying")
    search_fields = ("id", "series", "client_order_id", "user__email")
    list_select_related = ("user",)


@admin.register(OptionPosition)
class OptionPositionAdmin(ReadOnlyModelAdmin):
    list_display = (
        "id",
        "user",
        "series",
        "status",
        "contracts",
        "average_price_usdt",
        "cost_usdt",
        "realized_pnl_usdt",
        "updated_at",
    )
    list_filter = ("status", "underlying")
    search_fields = ("series", "user__email")
    list_select_related = ("user",)
    change_list_template = "admin/orders/optionposition/change_list.html"  # + a link to the exposure page

    def get_urls(self):
        extra = [
            path(
                "exposure/",
                self.admin_site.admin_view(self.exposure_view),
                name="orders_optionposition_exposure",
            )
        ]
        return extra + super().get_urls()

    def exposure_view(self, request):
        """The counter's exposure, live: the page polls GET /api/v1/ops/risk/exposure."""
        if not request.user.is_staff or not self.has_view_permission(request):
            raise PermissionDenied
        return render(
            request,
            "admin/orders/counter_exposure.html",
            {
                **self.admin_site.each_context(request),
                "title": "Counter exposure",
                "opts": self.model._meta,
                "api_url": reverse("api:ops_risk_exposure"),
            },
        )


@admin.register(OptionExercise)
class OptionExerciseAdmin(ReadOnlyModelAdmin):
    list_display = (
        "id",
        "user",
        "series",
        "outcome",
        "contracts",
        "settlement_price",
        "payout_usdt",
        "realized_pnl_usdt",
        "settlement_state",
        "created_at",
    )
    list_filter = ("outcome", "settlement_state", "underlying")
    search_fields = ("series", "user__email")
    list_select_related = ("user",)
