import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from portfolio.reports_api import download
from trading import staff_queues
from trading.admin import ReadOnlyModelAdmin
from trading.errors import DomainError

from . import selectors, services
from .dashboard import compliance_dashboard
from .models import AmlAlert, AmlCase, AmlCaseComment, AmlRuleVersion, AuditRecord, CaseStatus
from .rules import MEASURES, Rule
from .sanctions import admin as sanctions_admin  # noqa: F401  (the sanctions list's pages)
from .sar import sar_export


@admin.register(AuditRecord)
class AuditRecordAdmin(ReadOnlyModelAdmin):
    """The kernel's audit trail, read-only: nobody adds, changes or deletes a record here."""

    list_display = ("seq", "at", "actor_label", "action", "target", "ip")
    list_filter = ("action",)
    search_fields = ("actor_label", "target_id")
    date_hierarchy = "at"
    ordering = ("-seq",)
    actions = None
    show_full_result_count = False
    fields = (
        "seq",
        "at",
        "actor",
        "actor_label",
        "action",
        "target_type",
        "target_id",
        "data_pretty",
        "ip",
        "prev_hash",
        "hash",
    )
    readonly_fields = fields

    @admin.display(description="Target")
    def target(self, obj):
        return f"{obj.target_type} {obj.target_id}".strip() or "—"

    @admin.display(description="Data")
    def data_pretty(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.data, indent=2, sort_keys=True, ensure_ascii=False))


# --- AML ----------------------------------------------------------------------------------------------


class AlertInline(admin.TabularInline):
    model = AmlAlert
    extra = 0
    can_delete = False
    fields = ("rule_code", "rule_version", "band", "score", "weighted_score", "value", "at", "source", "records")
    readonly_fields = fields
    ordering = ("at", "id")
    verbose_name_plural = "alerts (and the transactions behind them)"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="Transactions")
    def records(self, alert):
        return format_html_join(", ", "<code>{}</code>", ((ref,) for ref in alert.transactions))


class CommentInline(admin.TabularInline):
    model = AmlCaseComment
    extra = 0
    can_delete = False
    fields = ("at", "author", "body")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


DECISIONS = {
    "escalate": ("Escalate", services.case_escalate),
    "clear": ("Clear (nothing suspicious: closes the case)", services.case_clear),
    "sar": ("SAR filed (closes the case)", services.case_file_sar),
    "freeze": ("Freeze the account (trading halted, open orders cancelled)", services.case_freeze_account),
}


class CaseActionForm(forms.ModelForm):
    """The case page's actions: each goes through its service, in the audit trail."""

    assign_to_me = forms.BooleanField(required=False, label="Assign to me")
    comment = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}), label="Add a comment")
    decision = forms.ChoiceField(
        required=False, choices=[("", "—"), *((key, label) for key, (label, _) in DECISIONS.items())]
    )
    note = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="Why: required with a decision."
    )

    class Meta:
        model = AmlCase
        fields = []

    def clean(self):
        data = super().clean()
        decision = data.get("decision")
        if decision and not (data.get("note") or "").strip():
            self.add_error("note", "Say why.")
        if (decision or data.get("assign_to_me")) and self.instance.pk and not self.instance.is_open:
            raise forms.ValidationError("This case is closed: only comments can be added.")
        if decision == "escalate" and self.instance.status == CaseStatus.ESCALATED:
            self.add_error("decision", "Already escalated.")
        if decision == "freeze" and self.instance.account_frozen:
            self.add_error("decision", "The account is already frozen.")
        return data


@admin.register(AmlCase)
class AmlCaseAdmin(admin.ModelAdmin):
    """The AML case inbox: by status, highest score first. Staff assign a case to themselves,
    comment, escalate, clear, record a SAR or freeze the trader's account."""

    form = CaseActionForm
    list_display = ("id", "user", "status", "score", "rule_codes", "assignee", "account_frozen", "opened_at")
    list_filter = ("status", "account_frozen", ("assignee", admin.RelatedOnlyFieldListFilter))
    search_fields = ("user__email",)
    ordering = ("-score", "opened_at")
    list_select_related = ("user", "assignee")
    actions = ["assign_to_me"]
    inlines = [AlertInline, CommentInline]
    readonly_fields = (
        "user",
        "status",
        "score",
        "assignee",
        "account_frozen",
        "opened_at",
        "updated_at",
        "closed_at",
        "decided_by",
        "decision_note",
        "sar_links",
    )
    fieldsets = (
        (None, {"fields": readonly_fields}),
        ("Actions", {"fields": ("assign_to_me", "comment", "decision", "note")}),
    )

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("dashboard/", view(self.dashboard_view), name="compliance_dashboard"),
            path("<int:case_id>/sar.<str:fmt>", view(self.sar_view), name="compliance_amlcase_sar"),
            *super().get_urls(),
        ]

    def dashboard_view(self, request):
        return render(
            request,
            "admin/compliance/dashboard.html",
            {**self.admin_site.each_context(request), "title": "Compliance dashboard", "board": compliance_dashboard()},
        )

    def sar_view(self, request, case_id: int, fmt: str):
        """The case's suspicious activity report as PDF or CSV (the export is audited)."""
        if fmt not in ("pdf", "csv") or not AmlCase.objects.filter(pk=case_id).exists():
            raise Http404("No such report.")
        if not self.has_view_permission(request):
            raise PermissionDenied
        body, filename = sar_export(case_id=case_id, actor=request.user, fmt=fmt)
        return download(body, content_type="application/pdf" if fmt == "pdf" else "text/csv", filename=filename)

    @admin.display(description="Suspicious activity report")
    def sar_links(self, case):
        return format_html(
            '<a class="button" href="{}">PDF</a> <a class="button" href="{}">CSV</a> '
            '<span class="help">every export is recorded in the audit chain</span>',
            reverse("admin:compliance_amlcase_sar", args=[case.pk, "pdf"]),
            reverse("admin:compliance_amlcase_sar", args=[case.pk, "csv"]),
        )

    def changelist_view(self, request, extra_context=None):
        extra = {"dashboard_url": reverse("admin:compliance_dashboard"), **(extra_context or {})}
        return super().changelist_view(request, extra)

    @admin.display(description="Rules")
    def rule_codes(self, case):
        return ", ".join(selectors.case_rule_codes(case))

    @admin.action(description="Assign to me")
    def assign_to_me(self, request, queryset):
        done = 0
        for case in queryset.filter(status__in=[CaseStatus.OPEN, CaseStatus.ESCALATED]):
            services.case_assign(case_id=case.pk, actor=request.user)
            done += 1
        self.message_user(request, f"{done} case(s) assigned to you.")

    def save_model(self, request, obj, form, change):
        """Nothing is saved from the form itself: each action is its service."""
        data = form.cleaned_data
        try:
            if data.get("assign_to_me"):
                services.case_assign(case_id=obj.pk, actor=request.user)
            if (data.get("comment") or "").strip():
                services.case_comment(case_id=obj.pk, actor=request.user, body=data["comment"])
            if data.get("decision"):
                _, act = DECISIONS[data["decision"]]
                act(case_id=obj.pk, actor=request.user, note=data["note"])
        except DomainError as error:
            messages.error(request, str(error))
        obj.refresh_from_db()  # the confirmation names the case as it now is


@admin.register(AmlAlert)
class AmlAlertAdmin(ReadOnlyModelAdmin):
    list_display = ("id", "user", "rule_code", "rule_version", "band", "score", "at", "source", "case")
    list_filter = ("rule_code", "band", "source")
    search_fields = ("user__email", "trigger")
    date_hierarchy = "at"
    list_select_related = ("user", "case")


class RuleVersionForm(forms.ModelForm):
    """A new version: the definition as ``manage.py aml_backtest`` and the engine read it
    (window_seconds, weight, bands, params, insufficient_score, title)."""

    class Meta:
        model = AmlRuleVersion
        fields = ["code", "definition", "note"]

    def clean(self):
        data = super().clean()
        code = (data.get("code") or "").strip().upper()
        if code not in MEASURES:
            self.add_error("code", f"One of {', '.join(sorted(MEASURES))}.")
            return data
        try:
            Rule.from_data({**(data.get("definition") or {}), "code": code, "version": 0})
        except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError) as error:
            self.add_error("definition", f"Not a rule definition: {error!r}")
        data["code"] = code
        return data


@admin.register(AmlRuleVersion)
class AmlRuleVersionAdmin(admin.ModelAdmin):
    """Rule versions: a change to a rule is a new version (added here, not live), backtested
    with ``manage.py aml_backtest``, then made live."""

    form = RuleVersionForm
    list_display = ("code", "version", "live", "title", "created_at", "note")
    list_filter = ("live", "code")
    ordering = ("code", "-version")
    actions = ["make_live"]

    def get_readonly_fields(self, request, obj=None):
        return ("code", "version", "title", "definition_pretty", "live", "created_at", "note") if obj else ()

    def get_fields(self, request, obj=None):
        if obj:
            return ("code", "version", "title", "definition_pretty", "live", "created_at", "note")
        return ("code", "definition", "note")

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Definition")
    def definition_pretty(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.definition, indent=2, sort_keys=True))

    def save_model(self, request, obj, form, change):
        if change:
            return  # versions never change
        saved = services.aml_rule_version_add(
            code=obj.code, definition=obj.definition or {}, actor=request.user, note=obj.note
        )
        obj.pk, obj.version, obj.title, obj.definition = saved.pk, saved.version, saved.title, saved.definition

    @admin.action(description="Make live (in place of the code's live version)")
    def make_live(self, request, queryset):
        for row in queryset:
            services.aml_rule_make_live(rule_version_id=row.pk, actor=request.user)
        self.message_user(request, f"{queryset.count()} version(s) live.")


staff_queues.register(
    "aml_cases",
    label="AML cases open",
    changelist="admin:compliance_amlcase_changelist",
    query="status__in=open,escalated",
    count=lambda: AmlCase.objects.filter(status__in=[CaseStatus.OPEN, CaseStatus.ESCALATED]).count(),
)
