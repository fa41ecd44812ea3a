"""AML reads: the rules in force, traders' records as the rules see them, the case inbox.

Records are loaded for many traders at once (one query per source for a whole batch of
users), so the real-time path (one trader) and the scan (thousands) share the same code.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import psycopg
from django.conf import settings
from django.db import connection
from django.db.models import F, Q

from accounts.models import KycProfile, User
from ledger.models import Transfer, Withdrawal
from orders.spot.models import SpotTrade
from portfolio.selectors import index_prices

from .models import OPEN_STATUSES, AmlAlert, AmlCase, AmlRuleVersion, AmlSignIn
from .rules import DEPOSIT, SIGN_IN, TRADE, WITHDRAWAL, Record, Rule, Totals
from .rules.measures import reach as rules_reach
from .rules.measures import sums_needed

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
    # what the rules read beyond the records loaded (one trigger's evaluation, ``trigger_history``)
    totals: dict[int, Totals] = field(default_factory=dict)


def history_for(
    *,
    user_ids: list[int],
    start: datetime,
    end: datetime | None = None,
    trigger: str | None = None,
    prices: dict[str, Decimal] | None = None,
) -> History:
    """The traders' deposits, withdrawals, spot trades and sign-ins from ``start`` (each
    trader's latest money activity before it too, so a dormant account shows as dormant), and
    other accounts' sign-ins that share an IP address or a device with theirs. With one
    ``trigger`` to evaluate, only the others sharing that sign-in's IP or device (the only
    rule that reads them looks at nothing else), and none for any other trigger."""
    history = History()
    if not user_ids:
        return history
    prices = usd_prices() if prices is None else prices
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


def _tables():
    account = Transfer._meta.get_field("credit_account").related_model._meta.db_table
    return (
        Transfer._meta.db_table,
        account,
        Withdrawal._meta.db_table,
        SpotTrade._meta.db_table,
        AmlSignIn._meta.db_table,
    )


class _LazyPrices(dict):
    """USD prices read only when an asset other than USDT turns up (most evaluations never
    need the index)."""

    def __missing__(self, asset):
        self.update(usd_prices())
        return self.setdefault(asset, ZERO)

    def get(self, asset, default=None):
        return self[asset]


def _first_read(*, user_id: int, trigger: str, prices, lock: tuple[int, int] | None):
    """The live rules, the trader's (date joined, KYC country) and the trigger as a record
    (None when it is not this trader's or not there), in one statement, which also takes the
    caller's advisory transaction ``lock`` (the statement reads nothing that the lock guards)."""
    transfer, account, withdrawal, trade, signin = _tables()
    kind, _, key = trigger.partition(":")
    sources = {
        "transfer": (
            f"SELECT t.created_at, t.asset, t.amount, NULL, '', '' FROM {transfer} t JOIN {account} a"
            f" ON a.id = t.credit_account_id WHERE t.id = %s AND t.code IN ({', '.join(['%s'] * len(DEPOSIT_CODES))})"
            " AND a.user_id = %s",
            [key, *DEPOSIT_CODES, user_id],
            DEPOSIT,
        ),
        "withdrawal": (
            f"SELECT created_at, asset, amount, NULL, '', '' FROM {withdrawal} WHERE id = %s AND user_id = %s",
            [key, user_id],
            WITHDRAWAL,
        ),
        "trade": (
            f"SELECT created_at, 'USDT', quote_amount, NULL, '', '' FROM {trade}"
            " WHERE id = %s AND (maker_user_id = %s OR taker_user_id = %s)",
            [key, user_id, user_id],
            TRADE,
        ),
        "signin": (
            f"SELECT at, '', 0, host(ip), device, country FROM {signin} WHERE id = %s AND user_id = %s",
            [key, user_id],
            SIGN_IN,
        ),
    }
    if kind not in sources or (kind != "transfer" and not key.isdigit()):
        sql, params, record_kind = "SELECT NULL, NULL, NULL, NULL, NULL, NULL WHERE false", [], None
    else:
        sql, params, record_kind = sources[kind]
    locking = "pg_advisory_xact_lock(%s, %s)" if lock else "NULL"
    with binary_cursor() as cursor:
        cursor.execute(
            f"SELECT {locking},"
            f" (SELECT json_agg(definition ORDER BY code) FROM {AmlRuleVersion._meta.db_table} WHERE live),"
            f" u.date_joined, COALESCE(k.country, ''), r.*"
            f" FROM {User._meta.db_table} u LEFT JOIN {KycProfile._meta.db_table} k ON k.user_id = u.id"
            f" LEFT JOIN ({sql}) r ON true WHERE u.id = %s",
            [*(lock or ()), *params, user_id],
            prepare=True,
        )
        row = cursor.fetchone()
    if row is None:
        return [], None, None, ""
    _, definitions, joined, country, at, asset, amount, ip, device, where = row
    rules = [Rule.from_data(d) for d in definitions or ()]
    if at is None:
        return rules, None, joined, country
    usd = ZERO if record_kind == SIGN_IN else amount if record_kind == TRADE else amount * prices.get(asset, ZERO)
    return rules, Record(trigger, user_id, record_kind, at, usd, ip or "", device, where), joined, country


def trigger_history(
    *, user_id: int, trigger: str, now: datetime, lock: tuple[int, int] | None = None
) -> tuple[list[Rule], History | None]:
    """What ``rules`` need to judge one trigger of one trader, read as narrowly as they allow:
    the trader's records only as far back before the trigger as a rule reads them
    (``measures.reach``: days, not the horizon), and the rest as totals worked out by the
    database (the lookback sums, the latest activity before the trigger, whether there is
    another deposit), the other accounts' sign-ins only for a sign-in. One query for the
    trigger (with the live rules and the caller's advisory ``lock``), one round trip for the
    rest, and a third only when the records near the trigger leave the trader's latest money
    activity or another deposit open (a trader dormant over that window). The rules judge it
    exactly as they would with their whole horizon loaded (``history_for`` from ``now`` minus
    the horizon and a day). Answers the live rules and the
    history, or None for the history when a rule's reach is not known here (or off
    PostgreSQL): then ``history_for`` is the way."""
    if connection.vendor != "postgresql":
        if lock is not None:
            raise ValueError("advisory locks are PostgreSQL's")
        return live_rules(), None
    history = History()
    prices = _LazyPrices(USDT=ONE)
    rules, record, joined, country = _first_read(user_id=user_id, trigger=trigger, prices=prices, lock=lock)
    start = now - horizon(rules) - timedelta(days=1)
    if not rules or record is None or record.at < start or joined is None:
        return rules, history
    high_risk = settings.AML_HIGH_RISK_COUNTRIES
    near = rules_reach(rules, record, kyc_country=country, high_risk_countries=high_risk)
    if near is None:
        return rules, None
    transfer, account, withdrawal, trade, signin = _tables()
    # every statement is prepared (named parameters, the same text for every trigger of a
    # kind): PostgreSQL plans it once per connection, not once per evaluation
    codes = ", ".join(f"%(code{n})s" for n in range(len(DEPOSIT_CODES)))
    params = {"user": user_id, "until": record.at, **{f"code{n}": c for n, c in enumerate(DEPOSIT_CODES)}}

    def sources(lower: str, upper: str, kinds=(DEPOSIT, WITHDRAWAL, TRADE, SIGN_IN)) -> list[str]:
        """One SELECT per kind of the trader's records in [lower, upper): id, kind, at, asset,
        amount, ip, device, country."""
        parts = []
        if DEPOSIT in kinds:
            parts.append(
                f"SELECT 'transfer:' || t.id, 'deposit', t.created_at, t.asset, t.amount, NULL, '', ''"
                f" FROM {transfer} t JOIN {account} a ON a.id = t.credit_account_id WHERE t.code IN ({codes})"
                f" AND a.user_id = %(user)s AND t.created_at >= {lower} AND t.created_at {upper}"
            )
        if WITHDRAWAL in kinds:
            parts.append(
                f"SELECT 'withdrawal:' || id, 'withdrawal', created_at, asset, amount, NULL, '', '' FROM {withdrawal}"
                f" WHERE user_id = %(user)s AND created_at >= {lower} AND created_at {upper}"
            )
        if TRADE in kinds:
            parts.append(
                f"SELECT 'trade:' || id, 'trade', created_at, 'USDT', quote_amount, NULL, '', '' FROM {trade}"
                f" WHERE (maker_user_id = %(user)s OR taker_user_id = %(user)s)"
                f" AND created_at >= {lower} AND created_at {upper}"
            )
        if SIGN_IN in kinds:
            parts.append(
                f"SELECT 'signin:' || id, 'sign_in', at, '', 0, host(ip), device, country FROM {signin}"
                f" WHERE user_id = %(user)s AND at >= {lower} AND at {upper}"
            )
        return parts

    def to_record(row) -> Record:
        pk, kind, at, asset, amount, ip, device, where = row
        usd = ZERO if kind == SIGN_IN else amount if kind == TRADE else amount * prices.get(asset, ZERO)
        return Record(pk, user_id, kind, at, usd, ip or "", device, where)

    params["near"] = max(start, record.at - near)
    reads = [" UNION ALL ".join(sources("%(near)s", "<= %(until)s"))]
    wanted = sums_needed(rules, record)
    for n, (kinds, lower, upper) in enumerate(wanted):
        # the records the rules would see: from ``start``, up to the trigger
        params[f"lower{n}"], params[f"upper{n}"] = max(lower, start), min(upper, record.at)
        parts = sources(f"%(lower{n})s", f"< %(upper{n})s", kinds)
        if upper > record.at:
            parts = sources(f"%(lower{n})s", "<= %(until)s", kinds)
        reads.append(
            f"SELECT s.asset, s.kind, SUM(s.amount) FROM ({' UNION ALL '.join(parts)})"
            " AS s(id, kind, at, asset, amount, ip, device, country) GROUP BY s.asset, s.kind"
        )
    # the latest money activity before the trigger and whether the trader has another deposit:
    # the records near the trigger decide both for an active trader, and the database is asked
    # only about what they leave open (a trader dormant over the near window), in a second round
    # trip; the rules see the same either way
    at_last = "(SELECT at FROM last)"
    tied = " UNION ALL ".join(sources(at_last, f"<= {at_last}", (DEPOSIT, WITHDRAWAL, TRADE)))
    latest_read = (
        # each source's latest by its index (the deposits per account of the trader), then every
        # record at that time: ties go to the greatest id, as in time-then-id order
        "WITH last(at) AS (SELECT GREATEST("
        f"(SELECT MAX(l.at) FROM {account} a, LATERAL (SELECT t.created_at AS at FROM {transfer} t"
        f" WHERE t.credit_account_id = a.id AND t.code IN ({codes}) AND t.created_at < %(until)s"
        " ORDER BY t.created_at DESC LIMIT 1) l WHERE a.user_id = %(user)s),"
        f" (SELECT created_at FROM {withdrawal} WHERE user_id = %(user)s AND created_at < %(until)s"
        " ORDER BY created_at DESC LIMIT 1), "
        + ", ".join(
            f"(SELECT MAX(x.at) FROM ({part}) AS x(id, kind, at, asset, amount, ip, device, country))"
            for part in sources("'-infinity'", "< %(until)s", (TRADE,))
        )
        + "))"
        f" SELECT y.id, y.at FROM ({tied}) AS y(id, kind, at, asset, amount, ip, device, country)"
    )
    params["start"] = start
    deposits_read = f"SELECT COUNT(*) FROM ({sources('%(start)s', '<= %(until)s', (DEPOSIT,))[0]} LIMIT 2) AS d"
    if record.kind == SIGN_IN and (record.ip or record.device):
        shared = []
        if record.ip:
            shared.append("ip = %(ip)s::inet")
            params["ip"] = record.ip
        if record.device:
            shared.append("device = %(device)s")
            params["device"] = record.device
        reads.append(
            f"SELECT 'signin:' || id, user_id, at, host(ip), device, country FROM {signin}"
            f" WHERE ({' OR '.join(shared)}) AND at >= %(start)s AND user_id <> %(user)s ORDER BY at"
        )
    results = _prepared_together(reads, params)
    near_rows = results[0]
    records = sorted((to_record(row) for row in near_rows), key=lambda r: (r.at, r.id))
    sums = {}
    for (kinds, lower, upper), rows in zip(wanted, results[1 : 1 + len(wanted)], strict=True):
        sums[(kinds, lower, upper)] = sum(
            (total if kind == TRADE else total * prices.get(asset, ZERO) for asset, kind, total in rows), ZERO
        )
    if len(results) > 1 + len(wanted):
        history.others[user_id] = [
            Record(pk, other, SIGN_IN, at, ZERO, ip or "", device, where)
            for pk, other, at, ip, device, where in results[1 + len(wanted)]
        ]
    before = [(row[2], row[0]) for row in near_rows if row[1] != SIGN_IN and row[2] < record.at]
    latest = None
    if before:
        top = max(at for at, _ in before)
        latest = [(pk, at) for at, pk in before if at == top]
    own_deposits = sum(1 for row in near_rows if row[1] == DEPOSIT)
    if own_deposits < (2 if record.kind == DEPOSIT else 1):  # the trigger, or none: ask the database
        own_deposits = None
    later = ([latest_read] if latest is None else []) + ([deposits_read] if own_deposits is None else [])
    if later:
        answers = iter(_prepared_together(later, params))
        if latest is None:
            latest = next(answers)
        if own_deposits is None:
            own_deposits = next(answers)[0][0]
    last = None
    if latest:
        pk, at = max(latest, key=lambda row: row[0])
        # before the horizon the loaded history holds a marker of that time, not the record
        last = Record(pk if at >= start else f"last_activity:{at.isoformat()}", user_id, TRADE, at, ZERO)
    other_deposit = own_deposits > (1 if record.kind == DEPOSIT else 0)
    history.records[user_id] = records
    history.joined_at[user_id] = joined
    if country:
        history.kyc_country[user_id] = country
    history.totals[user_id] = Totals(sums=sums, last_activity=last, other_deposit=other_deposit)
    return rules, history


def _prepared_together(statements: list[str], params: dict) -> list[list[tuple]]:
    """Run ``statements`` (``%(name)s`` parameters from ``params``) as prepared statements in one
    round trip (a pipeline) and answer each one's rows."""
    connection.ensure_connection()
    cursors = []
    with connection.connection.pipeline():
        for sql in statements:
            cursor = binary_cursor()
            used = {key: value for key, value in params.items() if f"%({key})s" in sql}
            cursor.execute(sql, used, prepare=True)
            cursors.append(cursor)
    results = [cursor.fetchall() for cursor in cursors]
    for cursor in cursors:
        cursor.close()
    return results


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


# --- the scan's candidates -------------------------------------------------------------------------


def binary_cursor():
    """A cursor on Django's PostgreSQL connection (in its transaction, if any) that binds
    parameters on the server and reads and writes binary: for the scan's large results and
    arrays, whose text conversion in Python (timestamps above all) would cost more than the
    queries. Parameters are ``%s`` as usual."""
    connection.ensure_connection()
    cursor = psycopg.Cursor(connection.connection)
    cursor.format = psycopg.pq.Format.BINARY
    return cursor


_SLACK = Decimal("0.000001")  # SQL's exact sums against Python's 28 digits: a candidate too many, never one too few


def _lowest_scoring_edge(rule: Rule) -> Decimal | None:
    edges = [band.lower for band in rule.bands if band.score > 0]
    return min(edges) if edges else None


@dataclass(frozen=True, slots=True)
class VelocityRow:
    """Velocity's measure at one movement, worked out by the database: the USD moved in the
    rule's window up to the movement (``moved``, the window's movements ``record_ids``) and
    in the lookback before the window (``before``)."""

    record_id: str
    at: datetime
    joined_at: datetime
    moved: Decimal
    before: Decimal
    record_ids: tuple[str, ...]


def scan_candidates(
    *,
    rules: list[Rule],
    since: datetime,
    velocity: dict[int, list[VelocityRow]] | None = None,
    prices: dict[str, Decimal] | None = None,
) -> dict[int, dict[str, set[str]] | None] | None:
    """The records since ``since`` at which some live rule may raise (with the codes of the
    rules that may), per trader, worked out
    set-based in the database (window functions over each trader's deposits, withdrawals and
    trades, one query per rule): the rules' windowed counts and sums (structuring's count,
    velocity's day against its lookback, dormancy's gap) and their bands' lowest scoring
    edge rule out every other record. A superset: the pure core still judges each candidate
    exactly. A trader mapped to None: every record of theirs is a candidate (a high-risk KYC
    country). None overall when a rule is not known here (then every record is).

    With ``velocity`` (a dict to fill), velocity's candidates are not among the records
    answered: the query answers its measure's sums and records instead (``VelocityRow`` per
    candidate, per trader), for ``measures.velocity_value`` to judge without loading the
    trader's records."""
    if connection.vendor != "postgresql":
        return None
    transfer, account, withdrawal, trade, signin = _tables()
    prices = usd_prices() if prices is None else prices
    reach = horizon(rules)
    lower = since - reach - timedelta(days=1)
    values = ", ".join(["(%s, %s::numeric)"] * len(prices))
    price_params = [x for asset, price in prices.items() for x in (asset, price)]
    codes = ", ".join(["%s"] * len(DEPOSIT_CODES))
    movements = f"""
        prices(asset, price) AS (VALUES {values}),
        mv AS MATERIALIZED (
            SELECT a.user_id, 'transfer:' || t.id AS id, 'deposit' AS kind, t.created_at AS at,
                   t.amount * COALESCE(p.price, 0) AS usd
              FROM {transfer} t JOIN {account} a ON a.id = t.credit_account_id LEFT JOIN prices p ON p.asset = t.asset
             WHERE t.code IN ({codes}) AND t.created_at >= %s AND a.user_id IS NOT NULL
            UNION ALL
            SELECT w.user_id, 'withdrawal:' || w.id, 'withdrawal', w.created_at, w.amount * COALESCE(p.price, 0)
              FROM {withdrawal} w LEFT JOIN prices p ON p.asset = w.asset WHERE w.created_at >= %s
        )"""
    base_params = [*price_params, *DEPOSIT_CODES, lower, lower]
    found: dict[int, dict[str, set[str]] | None] = defaultdict(dict)

    # every rule's query is a branch of one statement: the movements are read once
    branches: list[tuple[str, list]] = []
    nothing = "NULL::timestamptz, NULL::timestamptz, NULL::numeric, NULL::numeric, NULL::text[]"

    def run(sql: str, params: list, *, measured: bool = False) -> None:
        """Queue ``sql`` (answering ``user_id, id``, or with ``measured`` velocity's columns too)."""
        source = f"({sql}) q" if measured else f"(SELECT user_id, id, {nothing} FROM ({sql}) r(user_id, id)) q"
        branches.append((f"SELECT %s, q.* FROM {source}", [rule.code, *params]))

    from .rules import measures as m

    for rule in rules:
        edge = _lowest_scoring_edge(rule)
        if edge is None and rule.insufficient_score <= 0:
            continue  # raises nothing, ever
        window = rule.window
        if rule.code == m.STRUCTURING:
            threshold = rule.param("threshold_usd")
            floor = threshold * (1 - rule.param("margin"))
            run(
                """SELECT user_id, id FROM (
                       SELECT user_id, id, at, near,
                              COUNT(*) FILTER (WHERE near) OVER (PARTITION BY user_id ORDER BY at
                                  RANGE BETWEEN %s PRECEDING AND CURRENT ROW) AS n
                         FROM (SELECT *, usd >= %s AND usd < %s AS near FROM mv) y) x
                    WHERE near AND at >= %s AND n >= %s""",
                [window, floor * (1 - _SLACK), threshold * (1 + _SLACK), since, edge],
            )
        elif rule.code == m.VELOCITY:
            lookback = timedelta(days=int(rule.param("lookback_days")))
            windows = Decimal(lookback / window)
            young = timedelta(days=int(rule.param("min_history_days")))
            measured = velocity is not None
            columns = "user_id, id, at, date_joined, moved, before, ids" if measured else "user_id, id"
            ids = ", array_agg(m.id) OVER w_now AS ids" if measured else ""
            sql = f"""SELECT {columns} FROM (
                       SELECT m.user_id, m.id, m.at, u.date_joined,
                              SUM(m.usd) OVER w_now AS moved, COALESCE(SUM(m.usd) OVER w_before, 0) AS before{ids}
                         FROM mv m JOIN {User._meta.db_table} u ON u.id = m.user_id
                       WINDOW w_now AS (PARTITION BY m.user_id ORDER BY m.at
                                        RANGE BETWEEN %s PRECEDING AND CURRENT ROW),
                              w_before AS (PARTITION BY m.user_id ORDER BY m.at
                                           RANGE BETWEEN %s PRECEDING AND %s PRECEDING)) x
                    WHERE at >= %s AND (
                        (at - date_joined < %s AND %s)
                        OR (at - date_joined >= %s AND %s AND moved >= %s * GREATEST(before / %s, %s)))"""
            params = [
                window,
                window + lookback,
                window + timedelta(microseconds=1),
                since,
                young,
                rule.insufficient_score > 0,
                young,
                edge is not None,
                (edge or ZERO) * (1 - _SLACK),
                windows,
                rule.param("min_baseline_usd"),
            ]
            run(sql, params, measured=measured)
        elif rule.code == m.DORMANT_REACTIVATED:
            # the latest money activity strictly before each movement, over the window before it:
            # the previous row's time (LAG), except within a group of rows at the same time,
            # which all take the group's first row's (a running MAX over a frame ending before
            # the row would be recomputed row by row: seconds for 100,000 movements)
            run(
                f"""SELECT user_id, id FROM (
                       SELECT user_id, id, kind, at, usd,
                              MAX(lag_at) FILTER (WHERE lag_at < at) OVER (PARTITION BY user_id, at) AS prev
                         FROM (SELECT *, LAG(at) OVER (PARTITION BY user_id ORDER BY at) AS lag_at FROM (
                                 SELECT user_id, id, kind, at, usd FROM mv WHERE at >= %s
                                 UNION ALL SELECT maker_user_id, NULL, 'trade', created_at, 0
                                             FROM {trade} WHERE created_at >= %s
                                 UNION ALL SELECT taker_user_id, NULL, 'trade', created_at, 0
                                             FROM {trade} WHERE created_at >= %s
                              ) money) y) x
                    WHERE kind <> 'trade' AND at >= %s AND usd >= %s AND (at - prev >= %s OR (prev IS NULL AND (
                        EXISTS (SELECT FROM {transfer} t JOIN {account} a ON a.id = t.credit_account_id
                                 WHERE a.user_id = x.user_id AND t.code IN ({codes}) AND t.created_at < %s)
                        OR EXISTS (SELECT FROM {withdrawal} w WHERE w.user_id = x.user_id AND w.created_at < %s)
                        OR EXISTS (SELECT FROM {trade} s
                                    WHERE (s.maker_user_id = x.user_id OR s.taker_user_id = x.user_id)
                                      AND s.created_at < %s))))""",
                [
                    *[since - window - timedelta(days=1)] * 3,
                    since,
                    (edge or ZERO) * (1 - _SLACK),
                    window,
                    # nothing before the movements read: an account with no earlier activity at
                    # all is new, not dormant (``measures.dormant_reactivated``)
                    *DEPOSIT_CODES,
                    *[since - window - timedelta(days=1)] * 3,
                ],
            )
        elif rule.code == m.LARGE_FIRST_DEPOSIT:
            run(
                f"""SELECT m.user_id, m.id FROM mv m
                      JOIN (SELECT id, date_joined FROM {User._meta.db_table} WHERE date_joined >= %s) u
                        ON u.id = m.user_id
                    WHERE m.kind = 'deposit' AND m.at >= %s AND m.at - u.date_joined <= %s AND m.usd >= %s""",
                [since - window - timedelta(days=1), since, window, (edge or ZERO) * (1 - _SLACK)],
            )
        elif rule.code in (m.RAPID_IN_OUT, m.FAN_IN_CONSOLIDATION):
            run(f"SELECT user_id, 'withdrawal:' || id FROM {withdrawal} WHERE created_at >= %s", [since])
        elif rule.code == m.SHARED_IP_DEVICE:
            run(f"SELECT user_id, 'signin:' || id FROM {signin} WHERE at >= %s", [since])
        elif rule.code == m.HIGH_RISK_JURISDICTION:
            risky = sorted({c.upper() for c in settings.AML_HIGH_RISK_COUNTRIES})
            if not risky:
                continue
            run(
                f"SELECT user_id, 'signin:' || id FROM {signin} WHERE at >= %s AND UPPER(country) = ANY(%s)",
                [since, risky],
            )
            for user_id in KycProfile.objects.filter(country__in=risky + [c.lower() for c in risky]).values_list(
                "user_id", flat=True
            ):
                found[user_id] = None
        else:
            return None
    if branches:
        with binary_cursor() as cursor:
            cursor.execute(
                f"WITH {movements} {' UNION ALL '.join(sql for sql, _ in branches)}",
                [*base_params, *(x for _, params in branches for x in params)],
            )
            for code, user_id, record_id, at, joined, moved, before, record_ids in cursor.fetchall():
                if code == m.VELOCITY and velocity is not None:
                    velocity.setdefault(user_id, []).append(
                        VelocityRow(record_id, at, joined, moved, before, tuple(record_ids))
                    )
                elif found.get(user_id, ()) is not None:
                    found[user_id].setdefault(record_id, set()).add(code)
    return found


def _triggers_since_portable(*, since: datetime, user_ids: list[int]) -> int:
    """``triggers_since`` for the embedded mode's SQLite (no arrays): the same counts by the ORM."""
    ids = list(user_ids)
    trades = SpotTrade.objects.filter(created_at__gte=since)
    return (
        Transfer.objects.filter(code__in=DEPOSIT_CODES, created_at__gte=since, credit_account__user_id__in=ids).count()
        + Withdrawal.objects.filter(created_at__gte=since, user_id__in=ids).count()
        + trades.filter(maker_user_id__in=ids).count()
        + trades.filter(taker_user_id__in=ids).exclude(maker_user_id=F("taker_user_id")).count()
        + AmlSignIn.objects.filter(at__gte=since, user_id__in=ids).count()
    )


def triggers_since(*, since: datetime, user_ids: list[int]) -> int:
    """How many records the traders have since ``since`` (a trade counts once per side), in
    one query."""
    if not user_ids:
        return 0
    if connection.vendor != "postgresql":
        return _triggers_since_portable(since=since, user_ids=user_ids)
    transfer, account, withdrawal, trade, signin = _tables()
    codes = ", ".join(["%s"] * len(DEPOSIT_CODES))
    sql = f"""
        SELECT (SELECT COUNT(*) FROM {transfer} t JOIN {account} a ON a.id = t.credit_account_id
                 WHERE t.code IN ({codes}) AND t.created_at >= %s AND a.user_id = ANY(%s))
             + (SELECT COUNT(*) FROM {withdrawal} WHERE created_at >= %s AND user_id = ANY(%s))
             + (SELECT COUNT(*) FROM {trade} WHERE created_at >= %s AND maker_user_id = ANY(%s))
             + (SELECT COUNT(*) FROM {trade} WHERE created_at >= %s AND taker_user_id = ANY(%s)
                   AND NOT (maker_user_id = taker_user_id AND maker_user_id = ANY(%s)))
             + (SELECT COUNT(*) FROM {signin} WHERE at >= %s AND user_id = ANY(%s))
    """
    ids = list(user_ids)
    with connection.cursor() as cursor:
        cursor.execute(sql, [*DEPOSIT_CODES, since, ids, since, ids, since, ids, since, ids, ids, since, ids])
        return int(cursor.fetchone()[0])
