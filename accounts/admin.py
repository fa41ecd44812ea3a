from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.utils.html import format_html

from trading import staff_queues
from trading.errors import DomainError

from . import services
from .models import KycProfile, KycStatus, User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ("id",)
    list_display = ("email", "is_staff", "is_active", "date_joined", "last_login")
    search_fields = ("email", "first_name", "last_name")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Security", {"fields": ("password_changed_at", "otp_reset_at", "last_login", "date_joined")}),
    )
    readonly_fields = ("password_changed_at", "otp_reset_at", "last_login", "date_joined")
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)


class RejectForm(forms.Form):
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 3}), help_text="Shown to the trader.")


@admin.register(KycProfile)
class KycProfileAdmin(admin.ModelAdmin):
    """The KYC review queue: filter by status, open the document, approve or reject in bulk."""

    list_display = ("user", "full_name", "country", "date_of_birth", "status", "submitted_at", "document_link")
    list_filter = ("status", "country")
    search_fields = ("user__email", "full_name")
    ordering = ("submitted_at", "id")
    actions = ["approve_selected", "reject_selected"]
    fields = (
        "user",
        "status",
        "full_name",
        "country",
        "date_of_birth",
        "document_link",
        "document_content_type",
        "submitted_at",
        "decided_at",
        "decided_by",
        "rejection_reason",
    )
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        extra = [
            path(
                "<int:profile_id>/document/",
                self.admin_site.admin_view(self.document_view),
                name="accounts_kycprofile_document",
            )
        ]
        return extra + super().get_urls()

    @admin.display(description="Document")
    def document_link(self, obj):
        if not obj.document:
            return "—"
        return format_html(
            '<a href="{}" target="_blank">view</a>', reverse("admin:accounts_kycprofile_document", args=[obj.pk])
        )

    def document_view(self, request, profile_id):
        if not self.has_view_permission(request):
            raise Http404
        profile = get_object_or_404(KycProfile, pk=profile_id)
        if not profile.document:
            raise Http404
        return FileResponse(
            profile.document.open("rb"), content_type=profile.document_content_type or "application/octet-stream"
        )

    @admin.action(description="Approve selected KYC submissions", permissions=["change"])
    def approve_selected(self, request, queryset):
        self._decide(request, queryset, approve=True)

    @admin.action(description="Reject selected KYC submissions (asks for a reason)", permissions=["change"])
    def reject_selected(self, request, queryset):
        form = RejectForm(request.POST if "reason" in request.POST else None)
        if form.is_bound and form.is_valid():
            self._decide(request, queryset, approve=False, reason=form.cleaned_data["reason"])
            return None
        return render(
            request,
            "admin/accounts/kycprofile/reject.html",
            {
                **self.admin_site.each_context(request),
                "title": "Reject KYC submissions",
                "profiles": queryset,
                "form": form,
                "opts": self.model._meta,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            },
        )

    def _decide(self, request, queryset, *, approve: bool, reason: str = ""):
        done = 0
        for profile in queryset.order_by("pk"):
            try:
                services.kyc_decide(profile_id=profile.pk, actor=request.user, approve=approve, reason=reason)
                done += 1
            except DomainError as exc:
                self.message_user(request, f"{profile.user.email}: {exc.message}", messages.WARNING)
        verb = "approved" if approve else "rejected"
        if done:
            self.message_user(request, f"{done} submission(s) {verb}.", messages.SUCCESS)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user", "decided_by")

    def changelist_view(self, request, extra_context=None):
        # The queue opens on what needs a decision.
        if not request.GET and request.method == "GET":
            request.GET = request.GET.copy()
            request.GET["status__exact"] = KycStatus.PENDING
        return super().changelist_view(request, extra_context)


staff_queues.register(
    "kyc",
    label="Identity checks to review",
    changelist="admin:accounts_kycprofile_changelist",
    query=f"status__exact={KycStatus.PENDING}",
    count=lambda: KycProfile.objects.filter(status=KycStatus.PENDING).count(),
)
