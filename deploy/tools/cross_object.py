"""Checks across the objects of a render: the PodMonitors and ServiceMonitors
that scrape the sidecar, and the `helm test` pod."""

import tomllib

from manifests import SIDECAR, is_test_hook


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
        name = f"ServiceMonitor {sm['metadata']['name']}"
        ends = sm["spec"].get("endpoints", [])
        if not ends or any(e.get("port") != "metrics" for e in ends):
            errs.append(f"{name}: must scrape port metrics")
        services = [s for s in docs if s["kind"] == "Service"
                    and selects(sm["spec"].get("selector", {}), s["metadata"].get("labels", {}))]
        if not any(p.get("name") == "metrics" for s in services for p in s["spec"].get("ports", [])):
            errs.append(f"{name}: selects no Service with a port named metrics")
    return errs


def check_test_hook(docs, expected):
    """The `helm test` pod, there exactly when expected: the same native
    sidecar, with a config that holds nothing (memory store, no declared
    clients), calls of health and list, every mount a volume of the pod, and
    no Deployment, Service, PodDisruptionBudget or PodMonitor selecting it."""
    errs = []
    pods = [d for d in docs if d["kind"] == "Pod" and is_test_hook(d)]
    if bool(pods) != expected:
        return [f"expected {'a' if expected else 'no'} `helm test` pod, found {len(pods)}"]
    for pod in pods:
        name = f"test Pod {pod['metadata']['name']}"
        gw = next((c for c in pod["spec"].get("initContainers", []) if c["name"] == SIDECAR), None)
        if gw is None or gw.get("restartPolicy") != "Always":
            errs.append(f"{name}: needs the native sidecar {SIDECAR}")
            continue
        calls = sorted(tuple(c.get("args", [])) for c in pod["spec"].get("containers", []))
        if calls != [("call", "health"), ("call", "list")]:
            errs.append(f"{name}: its containers must call health and list, call {calls}")
        labels = pod["metadata"].get("labels", {})
        # A ReplicaSet would adopt it, a Service route to it.
        for d in docs:
            if d["kind"] == "Service":
                sel = {"matchLabels": d["spec"].get("selector", {})}
            elif d["kind"] in ("Deployment", "PodDisruptionBudget", "PodMonitor"):
                sel = d["spec"].get("selector", {})
            else:
                continue
            if selects(sel, labels):
                errs.append(f"{name}: {d['kind']} {d['metadata']['name']} selects it")
        volumes = {v["name"] for v in pod["spec"].get("volumes", [])}
        for c in pod["spec"].get("initContainers", []) + pod["spec"].get("containers", []):
            for vm in c.get("volumeMounts", []):
                if vm["name"] not in volumes:
                    errs.append(f"{name}: container {c['name']} mounts {vm['name']!r}, not a volume of the pod")
        cm_name = next((v["configMap"]["name"] for v in pod["spec"].get("volumes", []) if "configMap" in v), None)
        cm = next((d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == cm_name), None)
        if cm is None or not is_test_hook(cm):
            errs.append(f"{name}: its ConfigMap {cm_name!r} must be a test hook of its own")
            continue
        cfg = tomllib.loads(cm["data"]["config.toml"])
        if cfg.get("token_store", {}).get("backend") != "memory" or cfg.get("clients"):
            errs.append(f"{name}: its config must use a memory store and declare no clients (it must not touch the release's state)")
    return errs
