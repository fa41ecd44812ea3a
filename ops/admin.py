"""The monitor in the staff console: each check's state, the incidents (open ones first in
the "waiting for staff" panel), and maintenance windows (declared with a length and a
reason, ended early with an action; both audited). The analytics: the daily aggregates
(exported as CSV with an action) and the live dashboard beside them."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.utils import timezone

from trading import staff_queues
from trading.admin import ReadOnlyModelAdmin

from . import selectors, services
from .api import AnalyticsSerializer
from .dashboard import analytics_dashboard
from .models import CheckState, DailyAggregate, Incident, MaintenanceWindow


@admin.register(CheckState)
class CheckStateAdmin(ReadOnlyModelAdmin):
    list_display = ("name", "status", "since", "checked_at", "failures", "short_detail")
    list_filter = ("status",)
    search_fields = ("name",)
    fields = ("name", "status", "since", "checked_at", "failures", "successes", "detail")
    readonly_fields = fields

    @admin.display(description="detail")
    def short_detail(self, obj):
        return str(obj.detail)[:160]


@admin.register(Incident)
class IncidentAdmin(ReadOnlyModelAdmin):
    list_display = ("check_name", "started_at", "resolved_at", "is_open", "silenced", "alerted_at", "recovery_sent_at")
    list_filter = (("resolved_at", admin.EmptyFieldListFilter), "silenced", "check_name")
    search_fields = ("check_name",)
    date_hierarchy = "started_at"
    fields = ("check_name", "started_at", "resolved_at", "silenced", "alerted_at", "recovery_sent_at", "detail")
    readonly_fields = fields

    @admin.display(boolean=True, description="open")
    def is_open(self, obj):
        return obj.resolved_at is None


class MaintenanceForm(forms.ModelForm):
    minutes = forms.FloatField(min_value=1, max_value=1440, initial=30, help_text="from now")

    class Meta:
        model = MaintenanceWindow
        fields = ("reason",)


@admin.register(MaintenanceWindow)
class MaintenanceWindowAdmin(admin.ModelAdmin):
    form = MaintenanceForm
    list_display = ("starts_at", "ends_at", "reason", "created_by", "active")
    actions = ["end_now"]

    @admin.display(boolean=True)
    def active(self, obj):
        return obj.starts_at <= timezone.now() < obj.ends_at

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        # the form has checked the length and the reason; the service records and audits it
        window = services.maintenance_declare(
            minutes=form.cleaned_data["minutes"], reason=form.cleaned_data["reason"], user=request.user
        )
        for field in ("pk", "starts_at", "ends_at", "reason", "created_by", "created_at"):
            setattr(obj, field, getattr(window, field))

    @admin.action(description="End the selected maintenance windows now", permissions=["add"])
    def end_now(self, request, queryset):
        for window in queryset:
            services.maintenance_end(window=window, user=request.user)
        self.message_user(request, f"{queryset.count()} window(s) ended.", messages.SUCCESS)


@admin.register(DailyAggregate)
class DailyAggregateAdmin(ReadOnlyModelAdmin):
    list_display = selectors.AGGREGATE_COLUMNS[:-1]  # the CSV's columns but computed_at
    list_filter = ("symbol",)
    date_hierarchy = "day"
    actions = ["export_csv"]
    change_list_template = "admin/ops/dailyaggregate/change_list.html"  # + a link to the live dashboard

    def get_urls(self):
        view = self.admin_site.admin_view
        return [path("dashboard/", view(self.dashboard_view), name="ops_analytics_dashboard"), *super().get_urls()]

    def dashboard_view(self, request):
        """The live figures: the page polls GET /api/v1/ops/analytics and the counter's
        exposure at GET /api/v1/ops/risk/exposure."""
        if not request.user.is_staff or not self.has_view_permission(request):
            raise PermissionDenied
        return render(
            request,
            "admin/ops/analytics.html",
            {
                **self.admin_site.each_context(request),
                "title": "Analytics",
                "opts": self.model._meta,
                "board": AnalyticsSerializer(analytics_dashboard()).data,
                "api_url": reverse("api:ops_analytics"),
                "exposure_url": reverse("api:ops_risk_exposure"),
            },
        )

    def changelist_view(self, request, extra_context=None):
        extra = {"dashboard_url": reverse("admin:ops_analytics_dashboard"), **(extra_context or {})}
        return super().changelist_view(request, extra)

    @admin.action(description="Export the selected days as CSV", permissions=["view"])
    def export_csv(self, request, queryset):
        response = HttpResponse(selectors.daily_aggregates_csv(queryset), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="daily-aggregates-{timezone.now():%Y%m%d}.csv"'
        return response


staff_queues.register(
    "ops_incidents",
    label="Open incidents (monitor)",
    changelist="admin:ops_incident_changelist",
    query="resolved_at__isempty=1",
    count=lambda: Incident.objects.filter(resolved_at__isnull=True).count(),
)
