from django.conf import settings


def platform(request):
    unread = 0
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        from notifications.selectors import notification_unread_count

        unread = notification_unread_count(user=user)
    return {
        "PLATFORM_NAME": settings.PLATFORM_NAME,
        "DEMO_MODE": settings.DEMO_MODE,
        "unread_notifications": unread,
    }
