"""Generate the settings reference from ``worker.config.Settings`` and each registered gateway's
account settings: ``deploy/env.example``, the Kubernetes ConfigMap and Secret template, and the
settings table of docs/configuration.md.

    .venv/bin/python deploy/settings_doc.py write   # rewrite env.example, k8s files, the doc
    .venv/bin/python deploy/settings_doc.py table   # print the README table (Markdown)

Each core setting's one line lives in DESCRIPTIONS below, a gateway's in its settings model
(``DESCRIPTIONS``); tests/integration/deploy/test_deploy_files.py fails when a field has none or
when a generated file is out of date. A gateway's variables are listed for its default account.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from worker.accounts import env_prefix
from worker.config import Settings
from worker.gateways.contract import Gateway
from worker.gateways.registry import REGISTRY

DEPLOY = Path(__file__).resolve().parent
ENV_EXAMPLE = DEPLOY / "env.example"
CONFIGMAP = DEPLOY / "k8s" / "configmap.yaml"
SECRET_EXAMPLE = DEPLOY / "k8s" / "secret.example.yaml"
URL_WITH_PASSWORD = ("database_url", "redis_url")  # credentials ride in the URL

DESCRIPTIONS = {
    "database_url": "Ledger database: sqlite:///path, or postgresql://user:pass@host/db.",
    "redis_url": "Redis for the broker, leases and rate limits; unset = one process, in-memory.",
    "redis_namespace": "Prefix of every Redis key, so deployments can share one Redis.",
    "tally_heartbeat_timeout_ms": "A worker silent this long is dead; its messages are requeued.",
    "tally_sources": "Sources to sync, e.g. aurpay,aurpay-eu; unset = gateways with credentials.",
    "sync_lookback_seconds": "An incremental sync re-reads this far back from the newest object.",
    "sync_full_scan_interval_seconds": "How often the scheduler runs a full scan of every feed.",
    "sync_incremental_interval_seconds": "How often the scheduler runs an incremental sync.",
    "tally_future_skew_seconds": "A record dated later than now + this never moves a cursor.",
    "tally_reporting_currency": "Currency reports are made in (Beancount's operating currency).",
    "tally_public_url": "Public URL Aurpay calls back (signature check behind a proxy).",
    "tally_callback_max_skew_seconds": "Callbacks whose Date is further off than this are refused.",
    "tally_callback_host": "Bind address of the callbacks server (0.0.0.0 in a container).",
    "tally_callback_port": "Port of the callbacks server.",
    "tally_alert_webhook_url": "Webhook that receives alert changes as JSON (holds a token).",
    "tally_slack_webhook_url": "Slack incoming-webhook URL for alert changes.",
    "tally_alert_retry_min_backoff_ms": "First retry delay of a failed alert delivery.",
    "tally_refund_grace_seconds": "A refund may take this long to appear before it is alerted.",
    "tally_source_down_alert_seconds": "Alert when a source has failed for this long.",
    "tally_max_rejected_per_run": "Alert when a run rejects more records than this.",
    "tally_reconcile_interval_seconds": "How often the scheduler runs an incremental reconcile.",
    "tally_currency_precision": 'Extra decimal places per currency, JSON, e.g. {"DOGE": 8}.',
    "tally_currency_tolerance": 'Tolerance per currency, JSON, e.g. {"USDT-TRC20": "0.01"}.',
    "tally_worker_threads": "Worker threads per `tally worker` process.",
    "tally_log_level": "debug, info, warning or error.",
    "tally_log_format": "json, console, or auto (JSON unless stderr is a terminal).",
    "tally_metrics_port": "Port for /metrics, /healthz, /readyz; 0 = no server.",
    "tally_metrics_host": "Bind address of that server (0.0.0.0 in a container).",
    "tally_ready_max_sync_age_seconds": (
        "`tally health` fails if a source's last sync is older; 0 = off (never /readyz)."
    ),
    "tally_shutdown_grace_seconds": "On SIGTERM, messages get this long to finish, then requeue.",
    # models read apart from the core (worker.config.MODELS, and the rules' own)
    "tally_rules": 'Per rule: enabled, severity, tolerances, JSON, e.g. {"aurpay.order": {}}.',
    "tally_console_token": "Signs people and API clients in to the web console (16+ chars).",
    "tally_console_read_only_open": "true = anyone who can reach the console may read it.",
    "tally_console_host": "Bind address of `tally console`.",
    "tally_console_port": "Port of `tally console`.",
    "tally_console_session_hours": "How long a console sign-in lasts.",
    "tally_retention_runs_seconds": "Sync run history older than this is pruned.",
    "tally_retention_ticks_seconds": "Scheduler ticks older than this are pruned.",
    "tally_retention_leases_seconds": "Expired leases older than this are pruned.",
    "tally_retention_deliveries_seconds": "Delivered alert notifications older than this go.",
    "tally_retention_replay_seconds": "Callback replay entries are kept this long.",
    "tally_replay_cache_max_entries": "Most callback replay entries one process keeps in memory.",
    "tally_retention_prune_interval_seconds": "How often the scheduler prunes bookkeeping.",
    "tally_quickbooks_accounts": "tally account → QuickBooks account name, JSON.",
    "tally_xero_accounts": "tally account → Xero account code, JSON.",
    "tally_xero_tax_rate": "The TaxRate of every Xero journal line.",
}


def _extra_models() -> list[type[BaseSettings]]:
    """The settings models read apart from the core one, in a fixed order."""
    from worker.alerts.settings import RuleSettings
    from worker.app.export_settings import ExportSettings
    from worker.console.settings import ConsoleSettings
    from worker.retention.settings import RetentionSettings

    return [RuleSettings, ConsoleSettings, RetentionSettings, ExportSettings]


SECTIONS = (  # (title, name prefixes); a field goes to the first section that matches
    ("storage and broker", ("database_", "redis_", "tally_heartbeat_")),
    ("sources (docs/accounts.md)", ("tally_sources",)),
    ("sync", ("sync_", "tally_future_")),
    ("callbacks", ("tally_public_url", "tally_callback_")),
    (
        "reconciliation and alerts",
        (
            "tally_alert_",
            "tally_slack_",
            "tally_refund_",
            "tally_source_",
            "tally_max_rejected_",
            "tally_reconcile_",
            "tally_currency_",
            "tally_rules",
        ),
    ),
    ("books", ("tally_reporting_",)),
    ("web console", ("tally_console_",)),
    (
        "retention (bookkeeping only; the ledger is never pruned)",
        ("tally_retention_", "tally_replay_"),
    ),
    ("accounting-system exports", ("tally_quickbooks_", "tally_xero_")),
    ("process and operations", ("tally_",)),
)

# What every container deployment (compose, Kubernetes) sets differently from the defaults.
CONTAINER_OVERRIDES = {
    "TALLY_CALLBACK_HOST": "0.0.0.0",
    "TALLY_METRICS_HOST": "0.0.0.0",
    "TALLY_METRICS_PORT": "9100",
    "TALLY_LOG_FORMAT": "json",
}
SECRET_PLACEHOLDERS = {
    "DATABASE_URL": "postgresql://tally:CHANGE-ME@postgres:5432/tally",
    "REDIS_URL": "redis://redis:6379/0",
}


@dataclass(frozen=True)
class Setting:
    name: str  # the environment variable
    default: str  # as written in an env file; "" = unset
    description: str
    secret: bool
    section: str


def _env_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format(value, "g")
    return str(value)


def _section(field: str) -> str:
    for title, prefixes in SECTIONS:
        if field.startswith(prefixes):
            return title
    raise LookupError(f"setting {field} matches no section in deploy/settings_doc.py")


def _setting(name: str, info: FieldInfo, description: str, section: str) -> Setting:
    secret = SecretStr in getattr(info.annotation, "__args__", ()) or name in URL_WITH_PASSWORD
    return Setting(name.upper(), _env_text(info.default), description, secret, section)


def gateway_settings(gateway: Gateway[Any]) -> list[Setting]:
    """A gateway's variables for its default account, in its ``DESCRIPTIONS``' order."""
    prefix = env_prefix(gateway.name, None)
    other = env_prefix(gateway.name, "eu").upper()
    section = f"{gateway.name}: the source {gateway.name}; another account, e.g. "
    section += f"{gateway.name}-eu, reads {other}<NAME>"
    fields, described = gateway.settings.model_fields, gateway.settings.DESCRIPTIONS
    missing = [name for name in fields if name not in described]
    if missing or set(described) - set(fields):
        name = (prefix + (missing or sorted(set(described) - set(fields)))[0]).upper()
        raise LookupError(f"setting {name}: {gateway.name}'s DESCRIPTIONS and fields differ")
    return [
        _setting(prefix + field, fields[field], description, section)
        for field, description in described.items()
    ]


def settings() -> list[Setting]:
    """Every core setting in declaration order, each gateway's after the sources list; raises if
    one has no description."""
    found = []
    for field, info in Settings.model_fields.items():
        if field not in DESCRIPTIONS:
            raise LookupError(f"setting {field.upper()} has no line in deploy/settings_doc.py")
        found.append(_setting(field, info, DESCRIPTIONS[field], _section(field)))
        if field == "tally_sources":
            for gateway in REGISTRY:
                found += gateway_settings(gateway)
    for model in _extra_models():
        for field, info in model.model_fields.items():
            if field not in DESCRIPTIONS:
                raise LookupError(f"setting {field.upper()} has no line in deploy/settings_doc.py")
            found.append(_setting(field, info, DESCRIPTIONS[field], _section(field)))
    return found


def render_env() -> str:
    lines = [
        "# Every setting tally reads, with its default. Copy to .env (or set the variables);",
        "# NAME= (empty) means unset. Generated by deploy/settings_doc.py: edit it there.",
    ]
    section = None
    for s in settings():
        if s.section != section:
            section = s.section
            lines += ["", f"# --- {section}"]
        lines += [f"# {s.description}{' (secret)' if s.secret else ''}", f"{s.name}={s.default}"]
    return "\n".join(lines) + "\n"


def _yaml_text(value: str) -> str:
    return '""' if not value else '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_configmap() -> str:
    lines = [
        "# Every non-secret setting (generated by deploy/settings_doc.py from worker.config).",
        "# Secrets, including the URLs that carry passwords, are in the tally-secrets Secret.",
        "apiVersion: v1",
        "kind: ConfigMap",
        "metadata:",
        "  name: tally-config",
        "  labels: {app.kubernetes.io/name: tally}",
        "data:",
    ]
    for s in settings():
        if not s.secret:
            value = CONTAINER_OVERRIDES.get(s.name, s.default)
            lines.append(f"  {s.name}: {_yaml_text(value)}  # {s.description}")
    return "\n".join(lines) + "\n"


def render_secret() -> str:
    lines = [
        "# A template: fill in the values you use (empty = unset), then apply it, or create it",
        "# with `kubectl create secret generic tally-secrets --from-env-file=...`. Never commit",
        "# real values. Generated by deploy/settings_doc.py.",
        "apiVersion: v1",
        "kind: Secret",
        "metadata:",
        "  name: tally-secrets",
        "  labels: {app.kubernetes.io/name: tally}",
        "type: Opaque",
        "stringData:",
    ]
    for s in settings():
        if s.secret:
            value = SECRET_PLACEHOLDERS.get(s.name, "")
            lines.append(f"  {s.name}: {_yaml_text(value)}  # {s.description}")
    return "\n".join(lines) + "\n"


def render_table() -> str:
    rows = ["| Setting | Default | What it does |", "| --- | --- | --- |"]
    for s in settings():
        default = f"`{s.default}`" if s.default else "unset"
        secret = " Secret." if s.secret else ""
        text = s.description.replace("|", "\\|")
        rows.append(f"| `{s.name}` | {default} | {text}{secret} |")
    return "\n".join(rows) + "\n"


CONFIG_DOC = DEPLOY.parent / "docs" / "configuration.md"
TABLE_INTRO = "Generated by `.venv/bin/python deploy/settings_doc.py table`:\n\n"


def render_config_doc() -> str:
    """docs/configuration.md with its settings table (after ``TABLE_INTRO``) regenerated."""
    text = CONFIG_DOC.read_text(encoding="utf-8")
    start = text.index(TABLE_INTRO) + len(TABLE_INTRO)
    end = text.index("\n\n", start) + 1
    return text[:start] + render_table() + text[end:]


GENERATED = {
    ENV_EXAMPLE: render_env,
    CONFIGMAP: render_configmap,
    SECRET_EXAMPLE: render_secret,
    CONFIG_DOC: render_config_doc,
}


def main(argv: list[str]) -> int:
    if argv == ["write"]:
        for path, render in GENERATED.items():
            path.write_text(render(), encoding="utf-8")
            print(f"wrote {path.relative_to(DEPLOY.parent)}")
        return 0
    if argv == ["table"]:
        print(render_table(), end="")
        return 0
    print("usage: settings_doc.py write|table", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
