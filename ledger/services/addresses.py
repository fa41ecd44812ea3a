"""Withdrawal address formats per asset: which network an address belongs to."""

from __future__ import annotations

import re

from trading.errors import ValidationFailed

_ADDRESS_FORMATS = {
    "BTC": [
        ("bech32", re.compile(r"^(bc1|tb1)[ac-hj-np-z02-9]{11,71}$")),
        ("base58", re.compile(r"^[13mn2][a-km-zA-HJ-NP-Z1-9]{25,34}$")),
    ],
    "ETH": [("ERC-20", re.compile(r"^0x[0-9a-fA-F]{40}$"))],
    "USDT": [("ERC-20", re.compile(r"^0x[0-9a-fA-F]{40}$")), ("TRC-20", re.compile(r"^T[1-9A-HJ-NP-Za-km-z]{33}$"))],
}


def address_network(*, asset: str, address: str) -> str:
    """The network an address belongs to, or a 400 if it fits none of the asset's formats."""
    for network, pattern in _ADDRESS_FORMATS[asset]:
        if pattern.match(address or ""):
            return network
    networks = ", ".join(name for name, _ in _ADDRESS_FORMATS[asset])
    raise ValidationFailed(
        f"This is not a valid {asset} address ({networks}).",
        code="invalid_address",
        fields={"address": ["Invalid address format."]},
    )
