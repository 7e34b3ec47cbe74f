"""Checks across the objects of a render: the PodMonitors and ServiceMonitors
that scrape the sidecar, and the `helm test` pod."""

import tomllib

from manifests import SIDECAR, is_hook


def selects(selector, labels):
    want = selector.get("matchLabels", {})
    return bool(want) and all(labels.get(k) == v for k, v in want.items())


def check_metrics_objects(docs, found, opts):
    """PodMonitors (or ServiceMonitors) exist exactly when metrics are on, and
    scrape the port named metrics of every workload with the sidecar."""
    errs = []
    pms = [d for d in docs if d["kind"] == "PodMonitor"]
    sms = [d for d in docs if d["kind"] == "ServiceMonitor"]
    if not opts.monitor:
        if pms or sms:
            errs.append("this render should have no PodMonitor or ServiceMonitor, yet has one")
        return errs
    if not pms and not sms:
        return ["metrics: no PodMonitor or ServiceMonitor in the render"]
    for pm in pms:
        name = f"PodMonitor {pm['metadata']['name']}"
        ends = pm["spec"].get("podMetricsEndpoints", [])
        if not ends or any(e.get("port") != "metrics" or e.get("path", "/metrics") != "/metrics" for e in ends):
            errs.append(f"{name}: must scrape port metrics at /metrics")
        for w in found:
            if not selects(pm["spec"].get("selector", {}), w["spec"]["template"]["metadata"].get("labels", {})):
                errs.append(f"{name}: its selector does not select {w['kind']} {w['metadata']['name']}'s pods")
    for sm in sms:
        if any(e.get("port") != "metrics" for e in sm["spec"].get("endpoints", [])):
            errs.append(f"ServiceMonitor {sm['metadata']['name']}: must scrape port metrics")
    return errs


def check_test_hook(docs):
    """The `helm test` pod: the same native sidecar, with a config that holds
    nothing (memory store, no declared clients), and calls of health and list."""
    errs = []
    for pod in (d for d in docs if d["kind"] == "Pod" and is_hook(d)):
        name = f"test Pod {pod['metadata']['name']}"
        gw = next((c for c in pod["spec"].get("initContainers", []) if c["name"] == SIDECAR), None)
        if gw is None or gw.get("restartPolicy") != "Always":
            errs.append(f"{name}: needs the native sidecar {SIDECAR}")
            continue
        calls = sorted(tuple(c.get("args", [])) for c in pod["spec"].get("containers", []))
        if calls != [("call", "health"), ("call", "list")]:
            errs.append(f"{name}: its containers must call health and list, call {calls}")
        cm_name = next((v["configMap"]["name"] for v in pod["spec"].get("volumes", []) if "configMap" in v), None)
        cm = next((d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == cm_name), None)
        if cm is None or not is_hook(cm):
            errs.append(f"{name}: its ConfigMap {cm_name!r} must be a test hook of its own")
            continue
        cfg = tomllib.loads(cm["data"]["config.toml"])
        if cfg.get("token_store", {}).get("backend") != "memory" or cfg.get("clients"):
            errs.append(f"{name}: its config must use a memory store and declare no clients (it must not touch the release's state)")
    return errs
