"""Risk in the admin: limit overrides and trading states, each change through the risk
services (so it is audited, and a state change can cancel the open orders in scope)."""

from django import forms
from django.contrib import admin

from trading.errors import DomainError

from . import core, services
from .models import RiskLimit, TradingState


class RiskLimitForm(forms.ModelForm):
    class Meta:
        model = RiskLimit
        fields = ("name", "target", "tier", "user", "value", "note")

    def clean(self):
        data = super().clean()
        if data.get("tier") is not None and data.get("user") is not None:
            raise forms.ValidationError("An override is for a tier or for a user, not both.")
        name = data.get("name")
        if name:
            data["target"] = (data.get("target") or "").strip().upper()
            if core.LIMITS[name].scope == "user" and data["target"]:
                self.add_error("target", f"{name} is set per account: leave the target blank.")
        return data


@admin.register(RiskLimit)
class RiskLimitAdmin(admin.ModelAdmin):
    form = RiskLimitForm
    list_display = ("name", "target", "tier", "user", "value", "note", "updated_at")
    list_filter = ("name", "tier")
    search_fields = ("name", "target", "user__email")
    raw_id_fields = ("user",)

    def save_model(self, request, obj, form, change):
        services.risk_limit_save(limit=obj, actor=request.user)

    def delete_model(self, request, obj):
        services.risk_limit_delete(limit=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for limit in queryset:
            services.risk_limit_delete(limit=limit, actor=request.user)


class TradingStateForm(forms.ModelForm):
    cancel_open_orders = forms.BooleanField(
        required=False, help_text="Also cancel every open spot order in this scope."
    )

    class Meta:
        model = TradingState
        fields = ("scope", "target", "state", "reason")
        help_texts = {"target": "A symbol (BTC-USDT) or underlying (BTC); a user's id or email; blank for platform."}

    def clean(self):
        data = super().clean()
        if self.instance.pk is None and data.get("state") == core.ACTIVE:
            self.add_error("state", "Every scope is active unless a row here says otherwise: choose a state to set.")
        scope = data.get("scope")
        if scope:
            try:
                data["target"] = services.state_target(scope, data.get("target"))
            except DomainError as exc:
                self.add_error("target", exc.message)
        return data

    def validate_unique(self):
        """One row per scope is the service's upsert, not a form error."""


@admin.register(TradingState)
class TradingStateAdmin(admin.ModelAdmin):
    """Scopes that are not active. Adding or changing a row sets the state (the kill switch);
    deleting one sets the scope back to active."""

    form = TradingStateForm
    list_display = ("scope", "target", "state", "reason", "set_by", "set_at")
    list_filter = ("scope", "state")

    def get_readonly_fields(self, request, obj=None):
        return ("scope", "target") if obj is not None else ()

    def save_model(self, request, obj, form, change):
        services.trading_state_set(
            scope=obj.scope,
            target=obj.target,
            state=obj.state,
            reason=obj.reason,
            actor=request.user,
            cancel_open_orders=form.cleaned_data.get("cancel_open_orders", False),
        )
        saved = TradingState.objects.filter(scope=obj.scope, target=obj.target).first()
        obj.pk = saved.pk if saved is not None else obj.pk

    def delete_model(self, request, obj):
        services.trading_state_set(
            scope=obj.scope, target=obj.target, state=core.ACTIVE, reason="cleared in the admin", actor=request.user
        )

    def delete_queryset(self, request, queryset):
        for state in queryset:
            self.delete_model(request, state)
