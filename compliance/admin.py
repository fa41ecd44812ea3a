import json

from django.contrib import admin
from django.utils.html import format_html

from trading.admin import ReadOnlyModelAdmin

from .models import AuditRecord


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
