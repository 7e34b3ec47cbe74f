"""Checks across the objects of a render: the PodMonitors and ServiceMonitors
that scrape the sidecar, the `helm test` pod, the claims the sidecars mount,
and what a Helm release keeps and names."""

import tomllib

import manifests
from manifests import SIDECAR, is_test_hook, pod_spec

# Helm keeps these on uninstall: losing them leaves clients that can no longer be managed.
KEEP = ("helm.sh/resource-policy", "keep")
# The sidecar's volumes that hold a release's own state: settings, secrets, tokens.
STATE_VOLUMES = {"dcr-gateway-config": ("configMap", "name"), "dcr-gateway-secrets": ("secret", "secretName"),
                 "dcr-gateway-token-store": ("persistentVolumeClaim", "claimName")}


def selects(selector, labels):
    """Whether a monitor's or a Service's selector names these labels: an
    empty one counts as selecting nothing here, never as selecting all."""
    return bool(selector.get("matchLabels")) and manifests.selects(selector, labels)


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
        # A default-deny namespace leaves the test pod's sidecar without DNS
        # and upstream unless the release's policy selects it too.
        wanted = [n for n in docs if n["kind"] == "NetworkPolicy" and "Egress" in n["spec"].get("policyTypes", [])]
        if wanted and not any(manifests.selects(n["spec"]["podSelector"], labels) for n in wanted):
            errs.append(f"{name}: no NetworkPolicy with egress selects it (under a default-deny policy its sidecar "
                        "reaches neither DNS nor the upstream)")
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


def release_of(docs):
    """The Helm release a render belongs to (the instance label of the
    chart's objects), or None for a kustomize render."""
    return next((d["metadata"]["labels"]["app.kubernetes.io/instance"] for d in docs
                 if "helm.sh/chart" in d["metadata"].get("labels", {})), None)


def check_claims(found):
    """A claim the sidecars mount is one pod's: not two workloads', nor a
    workload's with several replicas (Multi-Attach, a locked redb file)."""
    errs, users = [], {}
    for w in found:
        pod = pod_spec(w)
        gw = next(c for c in pod.get("initContainers", []) + pod["containers"] if c["name"] == SIDECAR)
        mounted = {m["name"] for m in gw.get("volumeMounts", [])}
        for v in pod.get("volumes", []):
            if v["name"] in mounted and "persistentVolumeClaim" in v:
                users.setdefault(v["persistentVolumeClaim"]["claimName"], []).append(w)
    for claim, ws in users.items():
        many = [w for w in ws if w["kind"] != "Job" and w["spec"].get("replicas", 1) > 1]
        if len(ws) > 1 or many:
            names = ", ".join(f"{w['kind']} {w['metadata']['name']}"
                              f"{' (%d replicas)' % w['spec']['replicas'] if w in many else ''}" for w in ws)
            errs.append(f"PersistentVolumeClaim {claim} is mounted by the sidecar of {names}: "
                        "one pod may write a token store (Multi-Attach, a locked redb file)")
    return errs


def check_release(docs, found, release):
    """A Helm release keeps its token-store claim and keyring Secret on
    uninstall, and names every object and state volume after itself, so two
    releases in one namespace share nothing."""
    errs = []
    if release is None:
        return errs
    for d in docs:
        kind, name = d["kind"], d["metadata"]["name"]
        if not (name == release or name.startswith(release + "-")):
            errs.append(f"{kind} {name}: not named after the release {release!r} (two releases would share it)")
        keyring = kind == "Secret" and "token-store-keys" in {**d.get("data", {}), **d.get("stringData", {})}
        if (kind == "PersistentVolumeClaim" or keyring) and not is_test_hook(d):
            if d["metadata"].get("annotations", {}).get(KEEP[0]) != KEEP[1]:
                errs.append(f"{kind} {name}: needs the annotation {KEEP[0]}: {KEEP[1]}, or helm uninstall deletes "
                            "it and every client registered through it can no longer be managed")
    for w in found:
        for v in pod_spec(w).get("volumes", []):
            source, field = STATE_VOLUMES.get(v["name"], (None, None))
            ref = v.get(source, {}).get(field) if source else None
            if ref is not None and not (ref == release or ref.startswith(release + "-")):
                errs.append(f"{w['kind']} {w['metadata']['name']}: volume {v['name']} refers to {ref!r}, "
                            f"not named after the release {release!r} (two releases would share it)")
    return errs
