from accounts.demo import DEMO_TRADER
from accounts.models import User

from .models import Notification
from .services import notification_create


def seed(out) -> None:
    trader = User.objects.filter(email=DEMO_TRADER).first()
    if trader and not Notification.objects.filter(user=trader, kind="welcome").exists():
        notification_create(
            user=trader,
            kind="welcome",
            title="Welcome to Meridian Exchange",
            body="This is a demo account with verified identity. Turn on 2FA from your account page.",
        )
