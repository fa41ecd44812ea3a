"""Where a trader sends coins. A production deployment gets these from its custody
provider; until one is configured each user gets a stable address derived from the
platform secret, flagged as a demo address that must not receive real funds."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from django.conf import settings

_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


@dataclass(frozen=True)
class DepositAddress:
    asset: str
    network: str
    address: str
    demo: bool


def deposit_address(*, user, asset: str) -> DepositAddress:
    digest = hmac.new(settings.SECRET_KEY.encode(), f"deposit:{user.pk}:{asset}".encode(), hashlib.sha256).digest()
    if asset == "BTC":
        body = "".join(_BECH32[b % 32] for b in digest[:39])
        return DepositAddress(asset, "Bitcoin (bech32)", f"bc1q{body}", True)
    network = "Ethereum (ERC-20)" if asset == "USDT" else "Ethereum"
    return DepositAddress(asset, network, "0x" + digest[:20].hex(), True)
