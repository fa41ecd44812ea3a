from django.core.management.base import BaseCommand, CommandError

from accounts.models import KycProfile
from accounts.services import kyc_decide
from trading.errors import DomainError


class Command(BaseCommand):
    help = "Approve or reject a user's pending KYC submission (the admin review decision, for scripts)."

    def add_arguments(self, parser):
        parser.add_argument("--email", required=True)
        decision = parser.add_mutually_exclusive_group(required=True)
        decision.add_argument("--approve", action="store_true")
        decision.add_argument("--reject", action="store_true")
        parser.add_argument("--reason", default="", help="Required with --reject; shown to the trader.")
        parser.add_argument("--actor", default="", help="Email of the staff member deciding (recorded).")

    def handle(self, *args, email, approve, reject, reason, actor, **options):
        profile = KycProfile.objects.select_related("user").filter(user__email__iexact=email.strip()).first()
        if profile is None:
            raise CommandError(f"No user with email {email} (or no KYC profile).")
        actor_user = None
        if actor:
            from accounts.models import User

            actor_user = User.objects.filter(email__iexact=actor, is_staff=True).first()
            if actor_user is None:
                raise CommandError(f"No staff user with email {actor}.")
        if reject and not reason.strip():
            raise CommandError("--reject needs --reason.")
        try:
            profile = kyc_decide(profile_id=profile.pk, actor=actor_user, approve=approve, reason=reason)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(self.style.SUCCESS(f"KYC for {profile.user.email}: {profile.status} (tier {profile.tier})."))
