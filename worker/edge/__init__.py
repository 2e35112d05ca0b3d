"""The edge: the production HTTP server every public endpoint of tally is served by (callbacks,
console), with JSON errors, request limits and a graceful drain."""

from worker.edge.server import EdgeLimits, EdgeServer, serve
from worker.edge.wsgi import (
    HTTPError,
    WSGIApp,
    json_errors,
    json_response,
    mount,
    read_body,
    request_path,
)

__all__ = [
    "EdgeLimits",
    "EdgeServer",
    "HTTPError",
    "WSGIApp",
    "json_errors",
    "json_response",
    "mount",
    "read_body",
    "request_path",
    "serve",
]
