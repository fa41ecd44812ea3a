"""The sanctions list in the staff console: what is loaded and from where (read only: the list
changes only by ``manage.py sanctions_load``)."""

from django.contrib import admin

from trading.admin import ReadOnlyModelAdmin

from .models import SanctionsAddress, SanctionsEntity, SanctionsListLoad


@admin.register(SanctionsListLoad)
class SanctionsListLoadAdmin(ReadOnlyModelAdmin):
    list_display = ("id", "source", "entities", "addresses", "sha256", "loaded_at")


class AddressInline(admin.TabularInline):
    model = SanctionsAddress
    extra = 0
    can_delete = False
    fields = ("address", "currency")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(SanctionsEntity)
class SanctionsEntityAdmin(ReadOnlyModelAdmin):
    list_display = ("caption", "schema", "id")
    list_filter = ("schema",)
    search_fields = ("caption", "id", "wallets__address")
    inlines = [AddressInline]
