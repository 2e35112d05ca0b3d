"""Aurpay: typed client, request/callback signing, payload validation and a local sandbox."""
