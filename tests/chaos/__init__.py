"""Chaos scenarios (``-m chaos``): kills, lost Redis, a database outage, faulty and changing
upstreams, hostile records; each ends by judging the whole ledger against the sandboxes' truth."""
