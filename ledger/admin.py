from django import forms
from django.contrib import admin, messages
from django.shortcuts import render

from trading import staff_queues
from trading.admin import ReadOnlyModelAdmin
from trading.errors import DomainError

from . import services
from .models import LedgerAccount, Transfer, TransferRejection, Withdrawal, WithdrawalStatus


@admin.register(LedgerAccount)
class LedgerAccountAdmin(ReadOnlyModelAdmin):
    list_display = (
        "code",
        "kind",
        "asset",
        "user",
        "role",
        "bucket",
        "debits_posted",
        "credits_posted",
        "debits_pending",
        "credits_pending",
    )
    list_filter = ("kind", "asset", "role")
    search_fields = ("code", "user__email")


@admin.register(Transfer)
class TransferAdmin(ReadOnlyModelAdmin):
    list_display = (
        "id",
        "kind",
        "asset",
        "amount",
        "debit_account",
        "credit_account",
        "code",
        "reference",
        "created_at",
    )
    list_filter = ("kind", "asset", "code")
    search_fields = ("id", "reference")
    list_select_related = ("debit_account", "credit_account")


@admin.register(TransferRejection)
class TransferRejectionAdmin(ReadOnlyModelAdmin):
    list_display = ("id", "error_code", "message", "created_at")


class RejectForm(forms.Form):
    reason = forms.CharField(max_length=300, widget=forms.Textarea(attrs={"rows": 3}), help_text="Shown to the trader.")


class SentForm(forms.Form):
    network_txid = forms.CharField(
        max_length=120, label="Network transaction", help_text="The coins' transaction id; shown to the trader."
    )


@admin.register(Withdrawal)
class WithdrawalAdmin(admin.ModelAdmin):
    """Withdrawal review: approve (funds leave: holds posted) or reject (holds voided)."""

    list_display = ("id", "user", "asset", "amount", "fee", "address", "status", "created_at", "decided_by")
    list_filter = ("status", "asset")
    search_fields = ("user__email", "address")
    actions = ["approve_selected", "reject_selected", "record_sent"]
    readonly_fields = [f.name for f in Withdrawal._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        if not request.GET and request.method == "GET":
            request.GET = request.GET.copy()
            request.GET["status__in"] = f"{WithdrawalStatus.PENDING},{WithdrawalStatus.AML_REVIEW}"
        return super().changelist_view(request, extra_context)

    @admin.action(description="Approve selected withdrawals (funds leave the platform)", permissions=["change"])
    def approve_selected(self, request, queryset):
        self._decide(request, queryset, lambda w: services.withdrawal_approve(withdrawal_id=w.pk, actor=request.user))

    @admin.action(description="Reject selected withdrawals (asks for a reason)", permissions=["change"])
    def reject_selected(self, request, queryset):
        form = RejectForm(request.POST if "reason" in request.POST else None)
        if form.is_bound and form.is_valid():
            reason = form.cleaned_data["reason"]
            self._decide(
                request,
                queryset,
                lambda w: services.withdrawal_reject(withdrawal_id=w.pk, actor=request.user, reason=reason),
            )
            return None
        return render(
            request,
            "admin/action_with_reason.html",
            {
                **self.admin_site.each_context(request),
                "title": "Reject withdrawals",
                "objects": queryset,
                "form": form,
                "opts": self.model._meta,
                "action": "reject_selected",
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
                "submit_label": "Reject and release the funds",
            },
        )

    @admin.action(description="Record the network transaction of an approved withdrawal (sent)", permissions=["change"])
    def record_sent(self, request, queryset):
        form = SentForm(request.POST if "network_txid" in request.POST else None)
        if form.is_bound and form.is_valid():
            txid = form.cleaned_data["network_txid"]
            self._decide(
                request,
                queryset,
                lambda w: services.withdrawal_sent_record(withdrawal_id=w.pk, actor=request.user, network_txid=txid),
            )
            return None
        return render(
            request,
            "admin/action_with_reason.html",
            {
                **self.admin_site.each_context(request),
                "title": "Record the withdrawal's network transaction",
                "objects": queryset,
                "form": form,
                "opts": self.model._meta,
                "action": "record_sent",
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
                "submit_label": "Record as sent and tell the trader",
            },
        )

    def _decide(self, request, queryset, decide):
        done = 0
        for withdrawal in queryset.order_by("pk"):
            try:
                decide(withdrawal)
                done += 1
            except DomainError as exc:
                self.message_user(request, f"Withdrawal {withdrawal.pk}: {exc.message}", messages.WARNING)
        if done:
            self.message_user(request, f"{done} withdrawal(s) processed.", messages.SUCCESS)


staff_queues.register(
    "withdrawals",
    label="Withdrawals to approve",
    changelist="admin:ledger_withdrawal_changelist",
    query=f"status__in={WithdrawalStatus.PENDING},{WithdrawalStatus.AML_REVIEW}",
    count=lambda: Withdrawal.objects.filter(status__in=[WithdrawalStatus.PENDING, WithdrawalStatus.AML_REVIEW]).count(),
)
