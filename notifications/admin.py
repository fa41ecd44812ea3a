from django.contrib import admin

from .models import Delivery, DeliveryAttempt, Notification, WebhookEndpoint


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class DeliveryInline(admin.TabularInline):
    model = Delivery
    fields = ("channel", "status", "attempts", "due_at", "sent_at", "last_error")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("user", "kind", "title", "created_at", "read_at", "in_app")
    list_filter = ("kind", "in_app", "critical")
    search_fields = ("user__email", "title", "dedupe_key")
    readonly_fields = (
        "user",
        "kind",
        "title",
        "body",
        "data",
        "dedupe_key",
        "critical",
        "in_app",
        "created_at",
        "updated_at",
        "read_at",
    )
    inlines = [DeliveryInline]

    def has_add_permission(self, request):
        return False


class AttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    fields = ("number", "ok", "detail", "duration_ms", "at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    """The delivery log: each email or webhook with every attempt and its outcome."""

    list_display = ("notification", "channel", "status", "attempts", "due_at", "sent_at", "last_error")
    list_filter = ("channel", "status")
    search_fields = ("notification__user__email", "notification__title")
    list_select_related = ("notification",)
    inlines = [AttemptInline]


@admin.register(DeliveryAttempt)
class DeliveryAttemptAdmin(ReadOnlyAdmin):
    list_display = ("delivery", "number", "ok", "detail", "duration_ms", "at")
    list_filter = ("ok", "delivery__channel")
    search_fields = ("delivery__notification__user__email", "detail")
    list_select_related = ("delivery",)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ("user", "url", "updated_at")
    search_fields = ("user__email", "url")
    exclude = ("secret",)
    readonly_fields = ("user", "created_at", "updated_at")

    def has_add_permission(self, request):
        return False
