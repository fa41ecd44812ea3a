from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render

from . import selectors, services


@login_required
def inbox(request):
    if request.method == "POST":
        services.notification_mark_all_read(user=request.user)
        return redirect("web:notifications")
    page = Paginator(selectors.notification_list(user=request.user), 25).get_page(request.GET.get("page"))
    return render(request, "notifications/inbox.html", {"page": page})
