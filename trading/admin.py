"""Read-only admin views of the kernel's leases and singleton checkpoints: operators look,
only the singletons themselves write (through fenced writes)."""

from django.contrib import admin

from .models import Lease, SingletonCheckpoint


class ReadOnlyModelAdmin(admin.ModelAdmin):
    """For rows that only the platform's own code writes: staff look, nobody edits."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Lease)
class LeaseAdmin(ReadOnlyModelAdmin):
    list_display = ("name", "holder", "epoch", "expires_at", "acquired_at", "renewed_at")
    search_fields = ("name", "holder")
    ordering = ("name",)


@admin.register(SingletonCheckpoint)
class SingletonCheckpointAdmin(ReadOnlyModelAdmin):
    list_display = ("name", "epoch", "updated_at")
    search_fields = ("name",)
    ordering = ("name",)
    fields = ("name", "epoch", "value", "updated_at")
    readonly_fields = fields
