"""What the platform needs to run tally safely, checked in the files: Pod Security "restricted",
disruption budgets, probes that say "alive" and "can serve", a drain before callbacks stop,
images by digest; and the shipped Prometheus rules and Grafana dashboard, which must name only
metrics tally exports (``promtool check rules`` when it is installed, as .ci/run does)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, datetime
from typing import Any

from tests.integration.deploy.test_deploy_files import DEPLOY, GRACE, k8s_objects, load_yaml
from worker.metrics import (
    REGISTRY,
    ChainVerifyCollector,
    FeedState,
    LedgerState,
    LedgerStateCollector,
    QueueState,
)

RULES = DEPLOY / "prometheus" / "tally-alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "tally-dashboard.json"
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
                "unless", "offset", "bool", "le", "time", "rate", "increase", "deriv", "delta",
                "sum", "max", "min", "avg", "count", "absent", "histogram_quantile", "source",
                "feed", "queue", "actor", "rule", "mode", "status", "reason", "outcome",
                "instance", "inf", "server"}  # fmt: skip


def _workloads() -> list[dict[str, Any]]:
    return [o for o in k8s_objects() if o["kind"] in ("Deployment", "Job")]


def _by_component(kind: str) -> dict[str, dict[str, Any]]:
    return {
        o["metadata"]["labels"]["app.kubernetes.io/component"]: o
        for o in k8s_objects()
        if o["kind"] == kind
    }


def test_every_pod_meets_the_restricted_pod_security_standard() -> None:
    for obj in _workloads():
        name, pod = obj["metadata"]["name"], obj["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False, name
        context = pod["securityContext"]
        assert context["runAsNonRoot"] is True and context["runAsUser"] != 0, name
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in pod["containers"]:
            own = container["securityContext"]
            assert own["allowPrivilegeEscalation"] is False, name
            assert own["readOnlyRootFilesystem"] is True, name
            assert own["capabilities"]["drop"] == ["ALL"], name
            assert "privileged" not in own and "add" not in own["capabilities"], name
            # Read-only root: Python and tally may still need a writable /tmp.
            mounts = {m["mountPath"] for m in container["volumeMounts"]}
            assert "/tmp" in mounts, name


def test_images_are_referenced_by_digest() -> None:
    for obj in _workloads():
        for container in obj["spec"]["template"]["spec"]["containers"]:
            image = container["image"]
            assert DIGEST.search(image), f"{obj['metadata']['name']} uses {image}, not a digest"
    (kustomization,) = load_yaml(DEPLOY / "k8s" / "kustomization.yaml")
    for image in kustomization["images"]:
        assert "newTag" not in image and re.fullmatch(r"sha256:[0-9a-f]{64}", image["digest"])
    assert "disruption-budgets.yaml" in kustomization["resources"]


def test_probes_say_alive_and_can_serve() -> None:
    for component, obj in _by_component("Deployment").items():
        (container,) = obj["spec"]["template"]["spec"]["containers"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", component
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", component
        # A liveness failure restarts the pod: it must be slower to fire than readiness.
        live, ready = container["livenessProbe"], container["readinessProbe"]
        assert live["periodSeconds"] * live.get("failureThreshold", 3) >= ready["periodSeconds"]
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    (check,) = re.findall(r"^HEALTHCHECK .*?CMD (.+)$", dockerfile, re.M | re.S)
    assert "/healthz" in check and "/readyz" not in check  # Docker restarts on it: liveness


def test_disruption_budgets_cover_every_deployment_and_never_block_a_drain() -> None:
    deployments, budgets = _by_component("Deployment"), _by_component("PodDisruptionBudget")
    assert set(budgets) == set(deployments)
    for component, budget in budgets.items():
        deployment = deployments[component]
        selector = budget["spec"]["selector"]["matchLabels"]
        assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
        replicas = deployment["spec"]["replicas"]
        allowed = (
            budget["spec"]["maxUnavailable"]
            if "maxUnavailable" in budget["spec"]
            else replicas - budget["spec"]["minAvailable"]
        )
        assert allowed >= 1, f"{component}: a budget allowing no eviction blocks node drains"
        assert budget["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    assert budgets["callbacks"]["spec"]["minAvailable"] >= 1  # a gateway always finds one


def test_callbacks_drain_before_they_stop_and_spread_over_nodes() -> None:
    callbacks = _by_component("Deployment")["callbacks"]
    pod = callbacks["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep" and int(command[1]) >= 5
    # Endpoints removal (preStop), then the server's drain (GRACE), inside the pod's grace.
    assert pod["terminationGracePeriodSeconds"] > int(command[1]) + GRACE
    assert callbacks["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    keys = {c["topologyKey"]: c for c in pod["topologySpreadConstraints"]}
    assert keys["kubernetes.io/hostname"]["whenUnsatisfiable"] == "DoNotSchedule"
    assert "topology.kubernetes.io/zone" in keys
    labels = callbacks["spec"]["template"]["metadata"]["labels"]
    for constraint in keys.values():
        assert constraint["labelSelector"]["matchLabels"] == labels


# --- observability


def exported_metric_names() -> set[str]:
    """Every series name tally can export: the process registry and the scheduler's gauges."""
    now = datetime.now(UTC)
    state = LedgerState(
        feeds=[FeedState("aurpay", "orders", now, now)],
        last_success={"aurpay": now},
        alerts={("order", "open"): 1, ("order", "acknowledged"): 1},
        head_seq=1,
        oldest_open={"order": now},
        follow_ups_pending={"aurpay": 0},
    )
    ledger = LedgerStateCollector(
        lambda: state,
        lambda: now,
        sources=["aurpay"],
        intervals={"incremental": 60, "full": 86400},
        queues=lambda: [QueueState("tally-sync", 0, 0, None)],
    )
    chain = ChainVerifyCollector()
    chain.record(True, 1, now)
    names: set[str] = set()
    for family in [*REGISTRY.collect(), *ledger.collect(), *chain.collect()]:
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}
        names |= {family.name + s for s in suffixes.get(family.type, [""])}
        names |= {sample.name for sample in family.samples}
    return names


def _metric_names(expr: str) -> set[str]:
    without_strings = re.sub(r'"[^"]*"', "", expr)
    without_ranges = re.sub(r"\[[^\]]*\]", "", without_strings)
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", without_ranges))
    return {w for w in words if w.lower() not in PROMQL_WORDS}


def _exprs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["expr"]] if isinstance(node.get("expr"), str) else []
        return found + [e for value in node.values() for e in _exprs(value)]
    if isinstance(node, list):
        return [e for value in node for e in _exprs(value)]
    return []


def test_the_alert_rules_pass_promtool_and_name_only_exported_metrics() -> None:
    promtool = shutil.which("promtool")
    if promtool is not None:  # .ci/run installs it (Debian's prometheus package)
        done = subprocess.run(
            [promtool, "check", "rules", str(RULES)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "SUCCESS" in done.stdout
    (document,) = load_yaml(RULES)
    rules = [rule for group in document["groups"] for rule in group["rules"]]
    names = {rule["alert"] for rule in rules}
    for needed in (
        "TallySourceNotSynced",
        "TallyBacklogGrowing",
        "TallyMessagesDeadLettered",
        "TallyChainVerifyFailed",
        "TallyReconcileAlertOpenTooLong",
    ):
        assert needed in names
    exported = exported_metric_names()
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in ("info", "warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]
        unknown = _metric_names(rule["expr"]) - exported
        assert unknown == set(), f"{rule['alert']} names metrics tally does not export: {unknown}"


def test_the_dashboard_queries_name_only_exported_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = _exprs(dashboard["panels"])
    assert len(exprs) >= 20
    exported = exported_metric_names()
    used: set[str] = set()
    for expr in exprs:
        unknown = _metric_names(expr) - exported
        assert unknown == set(), f"the dashboard queries metrics tally does not export: {unknown}"
        used |= _metric_names(expr)
    for needed in (
        "tally_queue_messages_pending",
        "tally_queue_dead_letters",
        "tally_queue_wait_seconds_bucket",
        "tally_chain_verify_ok",
        "tally_alerts_open",
        "tally_sync_last_success_timestamp_seconds",
        "tally_callbacks_total",
    ):
        assert needed in used
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert all(
        p["datasource"]["uid"] == "${datasource}" for p in dashboard["panels"] if "targets" in p
    )


def test_the_metric_name_check_catches_a_made_up_metric() -> None:
    assert _metric_names('sum by (queue) (rate(tally_made_up_total{queue="x"}[5m]))') == {
        "tally_made_up_total"
    }
    assert "tally_made_up_total" not in exported_metric_names()
