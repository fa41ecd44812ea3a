from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from ledger.services import deposit_credit
from trading.errors import DomainError
from trading.money import fmt


class Command(BaseCommand):
    help = "Credit a deposit to a user (the chain watcher's entry point). Idempotent per --txid."

    def add_arguments(self, parser):
        parser.add_argument("--email", required=True)
        parser.add_argument("--asset", required=True, help="USDT, BTC or ETH")
        parser.add_argument("--amount", required=True, help="decimal string, e.g. 1000 or 0.015")
        parser.add_argument("--txid", default="", help="on-chain transaction id; repeating it credits nothing more")

    def handle(self, *args, email, asset, amount, txid, **options):
        user = User.objects.filter(email__iexact=email.strip()).first()
        if user is None:
            raise CommandError(f"No user with email {email}.")
        try:
            transfer = deposit_credit(user=user, asset=asset, amount=amount, txid=txid or None)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Deposited {fmt(transfer.asset, transfer.amount)} {transfer.asset} to {user.email}: "
                f"transfer {transfer.id}"
            )
        )
