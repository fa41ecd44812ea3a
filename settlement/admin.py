"""The back office in admin: every settlement with its steps and error history, and the
manual-review queue with "retry from current step" and "mark resolved" (audited)."""

from django import forms
from django.contrib import admin

from trading import staff_queues
from trading.admin import ReadOnlyModelAdmin, action_with_form

from . import services
from .models import DONE, STEP_NAMES, Settlement, SettlementError, SettlementStep, State


class StepInline(admin.TabularInline):
    model = SettlementStep
    extra = 0
    can_delete = False
    fields = ("step", "status", "attempts", "error_code", "started_at", "finished_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class ErrorInline(admin.TabularInline):
    model = SettlementError
    extra = 0
    can_delete = False
    fields = ("at", "step", "attempt", "code", "transient", "message")
    readonly_fields = fields
    verbose_name_plural = "Error history"

    def has_add_permission(self, request, obj=None):
        return False


class NoteForm(forms.Form):
    note = forms.CharField(
        max_length=2000, widget=forms.Textarea(attrs={"rows": 3}), help_text="Recorded in the audit trail."
    )


@admin.register(Settlement)
class SettlementAdmin(ReadOnlyModelAdmin):
    list_display = (
        "id",
        "ref",
        "kind",
        "underlying",
        "usdt",
        "state",
        "step_shown",
        "attempts",
        "last_error_code",
        "slippage_bps",
        "accepted_at",
        "settled_at",
    )
    list_filter = ("state", "kind", "underlying", "step")
    search_fields = ("ref", "client_order_id", "venue_order_id")
    inlines = [StepInline, ErrorInline]
    actions = ["retry_selected", "resolve_selected"]
    exclude = ("step",)
    readonly_fields = ["step_shown", *(f.name for f in Settlement._meta.fields if f.name != "step")]

    @admin.display(description="Step", ordering="step")
    def step_shown(self, settlement):
        """The step in the words of the four-step flow: "done" once all four ran, never "5"."""
        if settlement.step >= DONE:
            return f"done (all {DONE - 1} steps)"
        return f"{settlement.step} of {DONE - 1}: {STEP_NAMES[settlement.step]}"

    def has_change_permission(self, request, obj=None):
        # Change permission gates the review actions; the form itself stays read-only.
        return request.user.has_perm("settlement.change_settlement")

    def changelist_view(self, request, extra_context=None):
        if not request.GET and request.method == "GET":
            request.GET = request.GET.copy()
            request.GET["state__exact"] = State.MANUAL_REVIEW
        return super().changelist_view(request, extra_context)

    @admin.action(description="Retry selected settlements from their current step", permissions=["change"])
    def retry_selected(self, request, queryset):
        return self._with_note(
            request, queryset, "retry_selected", "Retry settlements", "Retry from the current step",
            lambda s, note: services.settlement_retry(settlement_id=s.pk, actor=request.user, note=note),
        )  # fmt: skip

    @admin.action(description="Mark selected settlements resolved (note required)", permissions=["change"])
    def resolve_selected(self, request, queryset):
        return self._with_note(
            request, queryset, "resolve_selected", "Mark settlements resolved", "Mark resolved",
            lambda s, note: services.settlement_resolve(settlement_id=s.pk, actor=request.user, note=note),
        )  # fmt: skip

    def _with_note(self, request, queryset, action, title, label, decide):
        return action_with_form(
            self,
            request,
            queryset,
            NoteForm,
            lambda s, data: decide(s, data["note"]),
            action=action,
            title=title,
            submit_label=label,
            noun="settlement",
            done_word="updated",
        )


staff_queues.register(
    "settlement_review",
    label="Settlements in manual review",
    changelist="admin:settlement_settlement_changelist",
    query=f"state__exact={State.MANUAL_REVIEW}",
    count=lambda: Settlement.objects.filter(state=State.MANUAL_REVIEW).count(),
)
