from django import forms
from django.contrib import admin

from trading import staff_queues
from trading.admin import ReadOnlyModelAdmin, act_on_each, action_with_form

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
        act_on_each(
            self,
            request,
            queryset,
            lambda w: services.withdrawal_approve(withdrawal_id=w.pk, actor=request.user),
            noun="withdrawal",
        )

    @admin.action(description="Reject selected withdrawals (asks for a reason)", permissions=["change"])
    def reject_selected(self, request, queryset):
        return action_with_form(
            self,
            request,
            queryset,
            RejectForm,
            lambda w, data: services.withdrawal_reject(withdrawal_id=w.pk, actor=request.user, reason=data["reason"]),
            action="reject_selected",
            title="Reject withdrawals",
            submit_label="Reject and release the funds",
            noun="withdrawal",
        )

    @admin.action(description="Record the network transaction of an approved withdrawal (sent)", permissions=["change"])
    def record_sent(self, request, queryset):
        return action_with_form(
            self,
            request,
            queryset,
            SentForm,
            lambda w, data: services.withdrawal_sent_record(
                withdrawal_id=w.pk, actor=request.user, network_txid=data["network_txid"]
            ),
            action="record_sent",
            title="Record the withdrawal's network transaction",
            submit_label="Record as sent and tell the trader",
            noun="withdrawal",
        )


staff_queues.register(
    "withdrawals",
    label="Withdrawals to approve",
    changelist="admin:ledger_withdrawal_changelist",
    query=f"status__in={WithdrawalStatus.PENDING},{WithdrawalStatus.AML_REVIEW}",
    count=lambda: Withdrawal.objects.filter(status__in=[WithdrawalStatus.PENDING, WithdrawalStatus.AML_REVIEW]).count(),
)
