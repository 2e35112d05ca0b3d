"""Provider-neutral parts of the local gateway sandboxes (Aurpay, Ebioro): the HTTP server loop,
fault injection, admin-request plumbing and the background webhook/callback sender.

A provider's sandbox supplies its world, its endpoints, its auth check and its error envelope
through ``http.SandboxApp``; everything here knows nothing about any one gateway.
"""
