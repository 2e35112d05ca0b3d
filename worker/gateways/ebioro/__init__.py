"""Ebioro (Stellar, USDC): digest-signed client, payloads, sync source, books and webhooks.

``GATEWAY`` is the package's one face (``worker.gateways.contract.Gateway``).
"""

from __future__ import annotations

from worker.gateways.contract import Gateway
from worker.gateways.ebioro.plan import make_plan
from worker.gateways.ebioro.postings import DERIVERS
from worker.gateways.ebioro.settings import EbioroSettings
from worker.gateways.ebioro.source import build_source
from worker.gateways.ebioro.webhook import EbioroWebhooks

GATEWAY: Gateway[EbioroSettings] = Gateway(
    name="ebioro",
    settings=EbioroSettings,
    build_source=build_source,
    derivers=DERIVERS,
    make_plan=make_plan,
    verifier=EbioroWebhooks.for_account,
)
