"""Matching against a sanctions list: plain Python (rapidfuzz for the names), no Django.

Names are compared after normalizing (accents and punctuation dropped, case folded, words
sorted), with rapidfuzz's token-sort ratio: "Ivanov, Pyotr" matches "Pyotr IVANOV" at 100
and "Petr Ivanov" at about 91. A score at or above the threshold is a hit. Addresses match
exactly after the form their network compares them in (hex and bech32 addresses are case-
insensitive, base58 ones are not).

The list is read from FollowTheMoney entities, one JSON object per line, as OpenSanctions
publishes them: ``{"id", "schema", "caption", "properties": {"name": [...], "alias": [...],
"country": [...]}, "datasets": [...]}``; a ``CryptoWallet`` entity carries the address in
``properties.publicKey`` and its owner's id in ``properties.holder``.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from rapidfuzz import fuzz, process, utils

NAME_SCHEMAS = {"Person", "Organization", "Company", "LegalEntity", "Vessel", "Airplane"}
WALLET_SCHEMA = "CryptoWallet"
_NOT_WORD = re.compile(r"[^\w]+", re.UNICODE)


def normalize_name(name: str) -> str:
    """``"Pyótr  IVANOV-Smith."`` -> ``"ivanov pyotr smith"``: no accents, no punctuation,
    folded case, words sorted (order does not matter in a name)."""
    text = unicodedata.normalize("NFKD", str(name))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    words = _NOT_WORD.sub(" ", text.casefold()).replace("_", " ").split()
    return " ".join(sorted(words))


def normalize_address(address: str) -> str:
    """An address as networks compare it: ``0x`` hex (EVM) and bech32 (``bc1``, ``tb1``,
    ``ltc1``) addresses ignore case; base58 ones (legacy Bitcoin, Tron) keep it."""
    text = str(address or "").strip()
    lowered = text.lower()
    if lowered.startswith("0x") or re.match(r"^[a-z]{1,4}1[02-9ac-hj-np-z]{6,}$", lowered):
        return lowered
    return text


@dataclass(frozen=True)
class Entity:
    id: str
    schema: str
    caption: str
    names: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ()
    addresses: tuple[tuple[str, str], ...] = ()  # (address, currency)


@dataclass(frozen=True)
class NameMatch:
    entity_id: str
    caption: str
    matched: str  # the list's name that matched
    score: float


def read_entities(lines: Iterable[str]) -> Iterator[Entity]:
    """Entities from FollowTheMoney JSON lines: people and organisations with their names,
    and each wallet's address on its holder (a wallet whose holder is not in the file is an
    entity of its own, named by its caption). Lines that are not entities raise ValueError."""
    holders: dict[str, dict] = {}
    wallets: list[dict] = []
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line:
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"line {number}: not JSON ({exc.msg})") from None
        if not isinstance(data, dict) or not data.get("id") or not data.get("schema"):
            raise ValueError(f"line {number}: not a FollowTheMoney entity (needs id and schema)")
        if data["schema"] == WALLET_SCHEMA:
            wallets.append(data)
        else:
            holders[data["id"]] = data
    addresses: dict[str, list[tuple[str, str]]] = {}
    orphans = []
    for wallet in wallets:
        props = wallet.get("properties") or {}
        pairs = [(normalize_address(key), (props.get("currency") or [""])[0]) for key in props.get("publicKey") or []]
        owners = [owner for owner in props.get("holder") or [] if owner in holders]
        if owners:
            for owner in owners:
                addresses.setdefault(owner, []).extend(pairs)
        else:
            orphans.append((wallet, pairs))
    for data in holders.values():
        if data["schema"] not in NAME_SCHEMAS and data["id"] not in addresses:
            continue  # addresses, sanctions programmes...: nothing to screen against
        yield _entity(data, addresses.get(data["id"], []))
    for wallet, pairs in orphans:
        yield _entity(wallet, pairs, names=False)


def _entity(data: dict, addresses, *, names: bool = True) -> Entity:
    props = data.get("properties") or {}
    listed = []
    if names:
        for key in ("name", "alias", "weakAlias", "previousName"):
            listed.extend(str(value) for value in props.get(key) or [])
    caption = str(data.get("caption") or (listed[0] if listed else data["id"]))
    if names and caption not in listed:
        listed.insert(0, caption)
    return Entity(
        id=str(data["id"]),
        schema=str(data["schema"]),
        caption=caption,
        names=tuple(dict.fromkeys(name for name in listed if name.strip())),
        countries=tuple(str(c).lower() for c in props.get("country") or props.get("nationality") or []),
        datasets=tuple(str(d) for d in data.get("datasets") or []),
        addresses=tuple(dict.fromkeys(addresses)),
    )


@dataclass
class NameIndex:
    """Every listed name, normalized once; ``match`` scores a name against all of them."""

    keys: list[str] = field(default_factory=list)
    owners: list[tuple[str, str, str]] = field(default_factory=list)  # (entity id, caption, name as listed)

    @classmethod
    def build(cls, entities: Iterable[tuple[str, str, Iterable[str]]]) -> NameIndex:
        index = cls()
        for entity_id, caption, names in entities:
            for name in names:
                key = normalize_name(name)
                if key:
                    index.keys.append(key)
                    index.owners.append((entity_id, caption, name))
        return index

    def match(self, name: str, *, threshold: float, limit: int = 5) -> list[NameMatch]:
        """The best hits at or above ``threshold`` (0-100), best first, one per entity."""
        query = normalize_name(name)
        if not query or not self.keys:
            return []
        found = process.extract(
            query, self.keys, scorer=fuzz.token_sort_ratio, processor=utils.default_process,
            score_cutoff=threshold, limit=limit * 4,
        )  # fmt: skip
        best: dict[str, NameMatch] = {}
        for _key, score, position in found:
            entity_id, caption, listed = self.owners[position]
            if entity_id not in best or score > best[entity_id].score:
                best[entity_id] = NameMatch(entity_id, caption, listed, round(float(score), 1))
        return sorted(best.values(), key=lambda m: -m.score)[:limit]
