"""Aurpay: typed client, request/callback signing, payload validation, books and callbacks.

``GATEWAY`` is the package's one face (``worker.gateways.contract.Gateway``).
"""

from __future__ import annotations

from worker.gateways.aurpay.callbacks import AurpayCallbacks
from worker.gateways.aurpay.plan import make_plan
from worker.gateways.aurpay.postings import DERIVERS
from worker.gateways.aurpay.settings import AurpaySettings
from worker.gateways.aurpay.source import build_source
from worker.gateways.contract import Gateway

GATEWAY: Gateway[AurpaySettings] = Gateway(
    name="aurpay",
    settings=AurpaySettings,
    build_source=build_source,
    derivers=DERIVERS,
    make_plan=make_plan,
    verifier=AurpayCallbacks.for_account,
)
