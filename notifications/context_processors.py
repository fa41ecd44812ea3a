"""The navigation's unread count, on every page (listed in TEMPLATES' context processors)."""

from .selectors import notification_unread_count


def unread(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"unread_notifications": 0}
    return {"unread_notifications": notification_unread_count(user=user)}
