"""Sanctions screening in the platform: loading the list, screening names and addresses, and
what a hit does.

* KYC: the name a trader submits is screened after the submission commits; a hit raises a
  ``sanctions`` alert and opens (or joins) the trader's AML case. The KYC waits for staff.
* Withdrawals: before a withdrawal is held, its address is screened exactly and the
  beneficiary's name fuzzily; a hit raises the alert, opens the case, and the withdrawal is
  refused (``403 compliance_blocked``) with nothing held. The same withdrawal asked again is
  refused again without a second alert.
* The travel rule: a withdrawal worth at least ``TRAVEL_RULE_THRESHOLD_USD`` needs the
  beneficiary's data (``422 travel_rule_required`` otherwise); a self-hosted wallet needs the
  trader's attestation that it is theirs.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from trading.audit import audit_append
from trading.errors import DomainError, Forbidden

from .. import selectors as aml_selectors
from ..models import AmlAlert
from ..rules import Hit
from ..services import Outcome, _consider_case, _lock_user, _store
from . import core
from .models import SanctionsAddress, SanctionsEntity, SanctionsListLoad

logger = logging.getLogger(__name__)

RULE_CODE = "sanctions"
RULE_VERSION = 1
HIT_SCORE = 100


# --- the list ---------------------------------------------------------------------------------------


def sanctions_load(
    *, lines: Iterable[str], source: str, actor=None, progress: Callable[[int], None] | None = None
) -> SanctionsListLoad:
    """Replace the list with the entities in ``lines`` (FollowTheMoney JSON lines), in one
    transaction: screening sees the old list or the new one, never half of one."""
    digest = hashlib.sha256()

    def hashed(rows):
        for row in rows:
            digest.update(row.encode() if isinstance(row, str) else row)
            yield row.decode() if isinstance(row, bytes) else row

    entities = list(core.read_entities(hashed(lines)))
    with transaction.atomic(durable=True):
        SanctionsAddress.objects.all().delete()
        SanctionsEntity.objects.all().delete()
        batch, wallets, done = [], [], 0
        for entity in entities:
            batch.append(
                SanctionsEntity(
                    id=entity.id,
                    schema=entity.schema,
                    caption=entity.caption[:500],
                    names=list(entity.names),
                    countries=list(entity.countries),
                    datasets=list(entity.datasets),
                )
            )
            wallets.extend(
                SanctionsAddress(address=address, currency=currency, entity_id=entity.id)
                for address, currency in entity.addresses
            )
            if len(batch) >= 2000:
                SanctionsEntity.objects.bulk_create(batch)
                done += len(batch)
                batch = []
                if progress:
                    progress(done)
        SanctionsEntity.objects.bulk_create(batch)
        SanctionsAddress.objects.bulk_create(wallets, batch_size=2000)
        load = SanctionsListLoad.objects.create(
            source=source[:300],
            sha256=digest.hexdigest(),
            entities=len(entities),
            addresses=len(wallets),
            loaded_by=actor,
        )
        audit_append(
            actor=actor,
            action="compliance.sanctions_loaded",
            target=load,
            data={"source": source, "sha256": load.sha256, "entities": load.entities, "addresses": load.addresses},
        )
    if progress:
        progress(len(entities))
    _index_cache.clear()
    return load


_index_cache: dict[int, core.NameIndex] = {}


def _name_index() -> core.NameIndex:
    """The names of the list in force, normalized once per load (per process)."""
    latest = SanctionsListLoad.objects.order_by("-id").values_list("id", flat=True).first() or 0
    index = _index_cache.get(latest)
    if index is None:
        rows = SanctionsEntity.objects.values_list("id", "caption", "names")
        index = core.NameIndex.build((entity_id, caption, names) for entity_id, caption, names in rows)
        _index_cache.clear()
        _index_cache[latest] = index
    return index


def screen_name(name: str) -> list[core.NameMatch]:
    return _name_index().match(name, threshold=settings.SANCTIONS_NAME_THRESHOLD)


def screen_address(address: str) -> SanctionsAddress | None:
    key = core.normalize_address(address)
    if not key:
        return None
    return SanctionsAddress.objects.select_related("entity").filter(address=key).first()


# --- hits -------------------------------------------------------------------------------------------


def sanctions_hit_record(
    *, user_id: int, band: str, subject: str, entity_id: str, caption: str, match_score, reference: str
) -> AmlAlert | None:
    """A ``sanctions`` alert on the trader for one hit (``band``: ``address``, ``beneficiary_name``
    or ``kyc_name``), which opens or joins their case. The same hit again is the same alert."""
    now = timezone.now()
    hit = Hit(
        rule_code=RULE_CODE,
        rule_version=RULE_VERSION,
        band=band,
        score=HIT_SCORE,
        weighted=Decimal(HIT_SCORE),
        value=Decimal(str(match_score)),
        record_ids=(f"sanctions:{entity_id}", f"{band}:{subject}"),
        trigger_id=reference,
        at=now,
    )
    with transaction.atomic(durable=True):
        _lock_user(user_id)
        alerts = _store(user_id=user_id, hits=[hit], source="realtime")
        if alerts:
            audit_append(
                actor=None,
                action="compliance.sanctions_hit",
                target=alerts[0],
                data={
                    "user_id": user_id,
                    "band": band,
                    "subject": subject,
                    "entity": entity_id,
                    "caption": caption,
                    "score": str(match_score),
                    "reference": reference,
                },
            )
            _consider_case(user_id=user_id, outcome=Outcome(alerts=alerts, users=1))
    logger.warning("sanctions hit: user %s %s %r matches %s (%s)", user_id, band, subject, entity_id, match_score)
    return alerts[0] if alerts else None


def kyc_name_screen(*, user_id: int, full_name: str, reference: str) -> AmlAlert | None:
    """Screen a submitted KYC name (after its commit); a hit is recorded, not refused: the
    identity check then waits for staff, who see the case."""
    matches = screen_name(full_name)
    if not matches:
        return None
    best = matches[0]
    return sanctions_hit_record(
        user_id=user_id,
        band="kyc_name",
        subject=full_name,
        entity_id=best.entity_id,
        caption=best.caption,
        match_score=best.score,
        reference=reference,
    )


# --- withdrawals ------------------------------------------------------------------------------------


class TravelRuleRequired(DomainError):
    status = 422
    code = "travel_rule_required"


def _usd_value(asset: str, amount: Decimal) -> Decimal | None:
    price = aml_selectors.usd_prices().get(asset)
    if not price:
        return None  # no price: the rule applies, as for a large amount
    return amount * price


def travel_rule_check(*, asset: str, amount: Decimal, beneficiary: dict | None = None, **_) -> None:
    """At or above the threshold (USD), the beneficiary's name and wallet type are required,
    the VASP's name for a hosted wallet and the trader's ownership attestation for a
    self-hosted one. Below it, what was given is kept as given."""
    usd = _usd_value(asset, amount)
    threshold = Decimal(settings.TRAVEL_RULE_THRESHOLD_USD)
    if usd is not None and usd < threshold:
        return
    data = beneficiary or {}
    missing = {}
    if not data.get("name"):
        missing["beneficiary.name"] = ["The name of the person or business receiving the funds."]
    wallet = data.get("wallet_type")
    if wallet not in ("hosted", "self_hosted"):
        missing["beneficiary.wallet_type"] = ["hosted (at an exchange or custodian) or self_hosted."]
    elif wallet == "hosted" and not data.get("vasp"):
        missing["beneficiary.vasp"] = ["The exchange or custodian that hosts the wallet."]
    elif wallet == "self_hosted" and not data.get("ownership_attested"):
        missing["beneficiary.ownership_attested"] = ["Confirm that you own this self-hosted wallet."]
    if missing:
        worth = f"worth {usd:,.2f} USD" if usd is not None else "whose USD value is unknown right now"
        raise TravelRuleRequired(
            f"A withdrawal {worth} (the travel rule applies from {threshold:,.0f} USD) needs the beneficiary's "
            "details: who receives it and where their wallet is held.",
            fields=missing,
        )


def withdrawal_screen(*, user, asset: str, amount: Decimal, address: str, beneficiary: dict | None = None, **_):
    """The ``withdrawal_screen`` check (run once the trader's code is accepted, before anything
    is held): the address and the beneficiary's name against the sanctions list."""
    reference = f"withdrawal_request:{asset}:{address}"
    listed = screen_address(address)
    if listed is not None:
        sanctions_hit_record(
            user_id=user.pk,
            band="address",
            subject=core.normalize_address(address),
            entity_id=listed.entity_id,
            caption=listed.entity.caption,
            match_score=100,
            reference=reference,
        )
        raise _blocked()
    name = (beneficiary or {}).get("name")
    if name:
        matches = screen_name(name)
        if matches:
            best = matches[0]
            sanctions_hit_record(
                user_id=user.pk,
                band="beneficiary_name",
                subject=name,
                entity_id=best.entity_id,
                caption=best.caption,
                match_score=best.score,
                reference=reference,
            )
            raise _blocked()


def _blocked() -> Forbidden:
    return Forbidden(
        "This withdrawal cannot be made. Our compliance team will review it and contact you.",
        code="compliance_blocked",
    )
