"""Read-only admin views of the kernel's leases and singleton checkpoints: operators look,
only the singletons themselves write (through fenced writes)."""

from django.contrib import admin, messages
from django.shortcuts import render

from .errors import DomainError
from .models import Lease, SingletonCheckpoint


class ReadOnlyModelAdmin(admin.ModelAdmin):
    """For rows that only the platform's own code writes: staff look, nobody edits."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def act_on_each(model_admin, request, queryset, act, *, noun: str, done_word: str = "processed") -> None:
    """Run ``act(row)`` on each selected row in id order; a refusal (DomainError) is a warning
    naming its row and the others go on; one message counts what was done."""
    done = 0
    for row in queryset.order_by("pk"):
        try:
            act(row)
            done += 1
        except DomainError as exc:
            model_admin.message_user(request, f"{noun.capitalize()} {row.pk}: {exc.message}", messages.WARNING)
    if done:
        model_admin.message_user(request, f"{done} {noun}(s) {done_word}.", messages.SUCCESS)


def action_with_form(
    model_admin, request, queryset, form_class, act, *, action, title, submit_label, noun, done_word="processed"
):
    """An admin action that first asks for a form (a reason, a note, a network transaction)
    on ``admin/action_with_reason.html``, then runs ``act(row, cleaned_data)`` on each selected
    row (``act_on_each``)."""
    posted = any(name in request.POST for name in form_class.base_fields)
    form = form_class(request.POST if posted else None)
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        act_on_each(model_admin, request, queryset, lambda row: act(row, data), noun=noun, done_word=done_word)
        return None
    return render(
        request,
        "admin/action_with_reason.html",
        {
            **model_admin.admin_site.each_context(request),
            "title": title,
            "objects": queryset,
            "form": form,
            "opts": model_admin.model._meta,
            "action": action,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "submit_label": submit_label,
        },
    )


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
