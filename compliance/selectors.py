"""AML reads: the rules in force, traders' records as the rules see them, the case inbox.

Records are loaded for many traders at once (one query per source for a whole batch of
users), so the real-time path (one trader) and the scan (thousands) share the same code.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection
from django.db.models import Q

from accounts.models import KycProfile, User
from ledger.models import Transfer, Withdrawal
from orders.spot.models import SpotTrade
from portfolio.selectors import index_prices

from .models import OPEN_STATUSES, AmlAlert, AmlCase, AmlRuleVersion, AmlSignIn
from .rules import DEPOSIT, SIGN_IN, TRADE, WITHDRAWAL, Record, Rule

ONE = Decimal(1)
ZERO = Decimal(0)
DEPOSIT_CODES = ("deposit",)


def live_rules() -> list[Rule]:
    """The live version of every rule, as the pure core's ``Rule``."""
    return [Rule.from_data(v.definition) for v in AmlRuleVersion.objects.filter(live=True).order_by("code")]


def rule_version(*, code: str, version: int) -> Rule | None:
    row = AmlRuleVersion.objects.filter(code=code.upper(), version=version).first()
    return Rule.from_data(row.definition) if row else None


def horizon(rules: list[Rule]) -> timedelta:
    """How far back the rules look from a trigger: the longest window plus any lookback."""
    longest = timedelta(days=1)
    for rule in rules:
        extra = timedelta(days=int(rule.params.get("lookback_days", 0)))
        longest = max(longest, rule.window + extra)
    return longest


def usd_prices() -> dict[str, Decimal]:
    """USD per unit of each asset: USDT one to one, BTC and ETH at the index (the last known
    print while the feed is down; zero if there has never been one)."""
    prices = {"USDT": ONE}
    for asset, price in index_prices().items():
        prices[asset] = price.price if price.price is not None else ZERO
    return prices


@dataclass
class History:
    """What the rules need about a batch of traders."""

    records: dict[int, list[Record]] = field(default_factory=lambda: defaultdict(list))
    others: dict[int, list[Record]] = field(default_factory=lambda: defaultdict(list))
    joined_at: dict[int, datetime] = field(default_factory=dict)
    kyc_country: dict[int, str] = field(default_factory=dict)


def history_for(
    *, user_ids: list[int], start: datetime, end: datetime | None = None, trigger: str | None = None
) -> History:
    """The traders' deposits, withdrawals, spot trades and sign-ins from ``start`` (each
    trader's latest money activity before it too, so a dormant account shows as dormant), and
    other accounts' sign-ins that share an IP address or a device with theirs. With one
    ``trigger`` to evaluate, only the others sharing that sign-in's IP or device (the only
    rule that reads them looks at nothing else), and none for any other trigger."""
    history = History()
    if not user_ids:
        return history
    prices = usd_prices()
    upper = Q(created_at__lte=end) if end else Q()
    users = set(user_ids)

    def add(user_id, record):
        history.records[user_id].append(record)

    deposits = Transfer.objects.filter(
        upper, code__in=DEPOSIT_CODES, credit_account__user_id__in=user_ids, created_at__gte=start
    ).values_list("id", "credit_account__user_id", "asset", "amount", "created_at")
    for pk, user_id, asset, amount, at in deposits:
        add(user_id, Record(f"transfer:{pk}", user_id, DEPOSIT, at, amount * prices.get(asset, ZERO)))
    withdrawals = Withdrawal.objects.filter(upper, user_id__in=user_ids, created_at__gte=start).values_list(
        "pk", "user_id", "asset", "amount", "created_at"
    )
    for pk, user_id, asset, amount, at in withdrawals:
        add(user_id, Record(f"withdrawal:{pk}", user_id, WITHDRAWAL, at, amount * prices.get(asset, ZERO)))
    trades = SpotTrade.objects.filter(
        upper, Q(maker_user_id__in=user_ids) | Q(taker_user_id__in=user_ids), created_at__gte=start
    ).values_list("pk", "maker_user_id", "taker_user_id", "quote_amount", "created_at")
    for pk, maker, taker, quote, at in trades:
        for user_id in {maker, taker} & users:
            add(user_id, Record(f"trade:{pk}", user_id, TRADE, at, quote))
    signins = AmlSignIn.objects.filter(user_id__in=user_ids, at__gte=start)
    if end:
        signins = signins.filter(at__lte=end)
    ips, devices = set(), set()
    for pk, user_id, at, ip, device, country in signins.values_list("pk", "user_id", "at", "ip", "device", "country"):
        add(user_id, Record(f"signin:{pk}", user_id, SIGN_IN, at, ZERO, ip or "", device, country))
        ips.add(ip)
        devices.add(device)
    if trigger is not None:
        ips, devices = set(), set()
        for record in history.records.get(user_ids[0], ()):
            if record.id == trigger and record.kind == SIGN_IN:
                ips, devices = {record.ip or None}, {record.device}
    ips.discard(None)
    devices.discard("")
    if ips or devices:
        shared = AmlSignIn.objects.filter(Q(ip__in=ips) | Q(device__in=devices), at__gte=start)
        if end:
            shared = shared.filter(at__lte=end)
        by_ip, by_device = defaultdict(list), defaultdict(list)
        for pk, user_id, at, ip, device, country in shared.values_list(
            "pk", "user_id", "at", "ip", "device", "country"
        ):
            record = Record(f"signin:{pk}", user_id, SIGN_IN, at, ZERO, ip or "", device, country)
            if ip:
                by_ip[ip].append(record)
            if device:
                by_device[device].append(record)
        for user_id in user_ids:
            mine = [r for r in history.records.get(user_id, ()) if r.kind == SIGN_IN]
            seen = {}
            for r in mine:
                for other in [*by_ip.get(r.ip, ()), *by_device.get(r.device, ())]:
                    if other.user_id != user_id:
                        seen[other.id] = other
            if seen:
                history.others[user_id] = sorted(seen.values(), key=lambda r: r.at)
    for user_id, at in last_activity_before(user_ids=user_ids, before=start).items():
        # a marker of the latest activity before the horizon, which only the dormancy rule reads
        add(user_id, Record(f"last_activity:{at.isoformat()}", user_id, TRADE, at, ZERO))
    for records in history.records.values():
        records.sort(key=lambda r: (r.at, r.id))
    history.joined_at = dict(User.objects.filter(pk__in=user_ids).values_list("pk", "date_joined"))
    history.kyc_country = dict(
        KycProfile.objects.filter(user_id__in=user_ids).exclude(country="").values_list("user_id", "country")
    )
    return history


def last_activity_before(*, user_ids: list[int], before: datetime) -> dict[int, datetime]:
    """Each trader's latest deposit, withdrawal or spot trade before ``before``, in one query."""
    transfer, account = Transfer._meta.db_table, Transfer._meta.get_field("credit_account").related_model._meta.db_table
    withdrawal, trade = Withdrawal._meta.db_table, SpotTrade._meta.db_table
    ids = ", ".join(["%s"] * len(user_ids))
    codes = ", ".join(["%s"] * len(DEPOSIT_CODES))
    sql = f"""
        SELECT user_id, MAX(at) FROM (
            SELECT a.user_id AS user_id, MAX(t.created_at) AS at FROM {transfer} t
              JOIN {account} a ON a.id = t.credit_account_id
             WHERE t.code IN ({codes}) AND a.user_id IN ({ids}) AND t.created_at < %s GROUP BY a.user_id
            UNION ALL
            SELECT user_id, MAX(created_at) FROM {withdrawal}
             WHERE user_id IN ({ids}) AND created_at < %s GROUP BY user_id
            UNION ALL
            SELECT maker_user_id, MAX(created_at) FROM {trade}
             WHERE maker_user_id IN ({ids}) AND created_at < %s GROUP BY maker_user_id
            UNION ALL
            SELECT taker_user_id, MAX(created_at) FROM {trade}
             WHERE taker_user_id IN ({ids}) AND created_at < %s GROUP BY taker_user_id
        ) AS last GROUP BY user_id
    """
    params = [*DEPOSIT_CODES, *user_ids, before, *user_ids, before, *user_ids, before, *user_ids, before]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return {user_id: _aware(at) for user_id, at in rows if at is not None}


def _aware(value):
    if isinstance(value, str):  # SQLite answers text for an aggregate of datetimes
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        from datetime import UTC

        value = value.replace(tzinfo=UTC)
    return value


def active_users_since(*, since: datetime) -> list[int]:
    """Every trader with a deposit, withdrawal, spot trade or sign-in since ``since``: one
    set-based query over the sources."""
    transfer, account = Transfer._meta.db_table, Transfer._meta.get_field("credit_account").related_model._meta.db_table
    withdrawal, trade, signin = Withdrawal._meta.db_table, SpotTrade._meta.db_table, AmlSignIn._meta.db_table
    codes = ", ".join(["%s"] * len(DEPOSIT_CODES))
    sql = f"""
        SELECT a.user_id FROM {transfer} t JOIN {account} a ON a.id = t.credit_account_id
         WHERE t.code IN ({codes}) AND t.created_at >= %s AND a.user_id IS NOT NULL
        UNION SELECT user_id FROM {withdrawal} WHERE created_at >= %s
        UNION SELECT maker_user_id FROM {trade} WHERE created_at >= %s
        UNION SELECT taker_user_id FROM {trade} WHERE created_at >= %s
        UNION SELECT user_id FROM {signin} WHERE at >= %s
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [*DEPOSIT_CODES, since, since, since, since, since])
        found = sorted({row[0] for row in cursor.fetchall() if row[0] is not None})
    platform = system_users()
    return [pk for pk in found if pk not in platform]


def system_users() -> set[int]:
    """The platform's own trading accounts (the market maker and the risk-exempt desks):
    not traders to monitor."""
    emails = set(settings.RISK_EXEMPT_EMAILS) | {settings.MARKET_MAKER_EMAIL}
    return set(User.objects.filter(email__in=emails).values_list("pk", flat=True))


# --- cases -------------------------------------------------------------------------------------------


def case_inbox(*, status: str | None = None):
    """Cases in one status (all of them when not given), highest score first."""
    cases = AmlCase.objects.select_related("user", "assignee").order_by("-score", "opened_at", "id")
    if status:
        cases = cases.filter(status=status)
    return cases


def case_rule_codes(case: AmlCase) -> list[str]:
    return sorted(set(case.alerts.values_list("rule_code", flat=True)))


def open_case_of(*, user_id: int) -> AmlCase | None:
    return AmlCase.objects.filter(user_id=user_id, status__in=OPEN_STATUSES).first()


def alerts_unassigned(*, user_id: int, since: datetime):
    return AmlAlert.objects.filter(user_id=user_id, case__isnull=True, at__gte=since)
