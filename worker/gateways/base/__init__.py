"""What every gateway client shares, and nothing about any gateway's wire format.

``http`` (calls, retries, masking) · ``responses`` (status → error, ``Retry-After``) ·
``records`` (record base, validation errors) · ``paging`` (feeds, page frame, walks) ·
``client`` (the ``GatewayClient`` base). The names other packages use are re-exported here.
"""

from __future__ import annotations

from worker.gateways.base.http import Limiter, NoLimit
from worker.gateways.base.responses import parse_retry_after

__all__ = ["Limiter", "NoLimit", "parse_retry_after"]
