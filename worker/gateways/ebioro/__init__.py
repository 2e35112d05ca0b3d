"""Ebioro (Stellar, USDC): digest-signed client, payloads, sync source and webhook checks."""
