from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render

from trading.errors import ValidationFailed

from . import kinds, selectors, services


@login_required
def inbox(request):
    if request.method == "POST":
        services.notification_mark_all_read(user=request.user)
        return redirect("web:notifications")
    page = Paginator(selectors.notification_list(user=request.user), 25).get_page(request.GET.get("page"))
    return render(request, "notifications/inbox.html", {"page": page})


@login_required
def preferences(request):
    """Every kind with a switch per channel (the locked kinds shown on, not switchable), and
    the webhook URL; one form, stored all or nothing."""
    errors = {}
    if request.method == "POST":
        events = {
            kind: {channel: f"{kind}.{channel}" in request.POST for channel in kinds.CHANNELS}
            for kind in kinds.KINDS
            if not kinds.locked(kind)
        }
        url = request.POST.get("webhook_url", "").strip()
        try:
            services.preferences_update(
                user=request.user,
                events=events,
                webhook_url=url,
                rotate_secret="rotate_webhook_secret" in request.POST and bool(url),
            )
        except ValidationFailed as exc:
            errors = exc.fields or {"": exc.message}
        else:
            messages.success(request, "Your notification preferences are saved.")
            return redirect("web:notification_preferences")
    current = selectors.preferences_for(user=request.user)
    rows = [
        {
            "kind": kind,
            "summary": spec.summary,
            "locked": spec.locked,
            "channels": [(channel, current[kind][channel]) for channel in kinds.CHANNELS],
        }
        for kind, spec in kinds.KINDS.items()
    ]
    return render(
        request,
        "notifications/preferences.html",
        {
            "rows": rows,
            "channels": kinds.CHANNELS,
            "webhook": selectors.webhook_for(user=request.user),
            "errors": errors,
        },
    )


@login_required
def mailbox(request):
    """Demo mode only: the emails the platform sent you, as they went out, so the email
    channel can be seen without a mail server."""
    if not settings.DEMO_MODE:
        raise Http404
    from .delivery import email_message

    page = Paginator(selectors.emails_sent_to(user=request.user), 20).get_page(request.GET.get("page"))
    mails = [(delivery, email_message(delivery.notification)) for delivery in page.object_list]
    return render(request, "notifications/mailbox.html", {"page": page, "mails": mails})
