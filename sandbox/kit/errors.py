"""Requests a sandbox world refuses, each carrying the HTTP status the sandbox answers with."""

from __future__ import annotations


class SandboxError(Exception):
    """A request the world refuses; ``status`` is the HTTP status the sandbox answers with."""

    status = 400


class NotFound(SandboxError):
    status = 404


class Conflict(SandboxError):
    status = 409
