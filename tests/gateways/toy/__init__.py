"""Toy: a third gateway that lives only in the tests, to prove the gateway seam.

Two feeds (invoices, credits), one follow-up (an invoice's settlement), its own books (postings,
one rule, a plan) and a fake server over HTTP (``server``). ``GATEWAY`` is its one face; a
test adds it with ``REGISTRY.with_gateway(toy.GATEWAY)`` and nothing else changes.
"""

from __future__ import annotations

from tests.gateways.toy.plan import make_plan
from tests.gateways.toy.postings import DERIVERS
from tests.gateways.toy.settings import ToySettings
from tests.gateways.toy.source import build_source
from worker.gateways.contract import Gateway

GATEWAY: Gateway[ToySettings] = Gateway(
    name="toy",
    settings=ToySettings,
    build_source=build_source,
    derivers=DERIVERS,
    make_plan=make_plan,
)
