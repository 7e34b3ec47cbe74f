"""What a workload with the sidecar needs to survive routine operations
(deploy/README.md, "What survives"): a termination grace that covers the
app's stop and the gateway's drain, a memory limit above the worst case the
gateway's caps allow, replicas spread over zones and hosts, and Services that
let callers go before the drain and say that the port speaks TLS."""

import math
import re

import manifests
import settings
from manifests import DEFAULT_LISTEN, port_of, selects

# Seconds allowed for the app containers to stop: they get SIGTERM first, and
# the gateway only once they have exited, within the same grace period.
APP_STOP_SECONDS = 10
# Least shutdown_delay behind a Service: the endpoint's removal takes a few
# seconds to reach kube-proxy and the callers' connection pools.
SERVICE_DELAY_SECONDS = 5
# Memory, in MiB (measured figures in the root README.md, "Performance"):
IDLE_MIB = 16                # idle RSS 15.0 to 16.3 MiB
STORE_MIB_PER_100K = 34      # peak 48.5 MiB with 100,000 tokens, less the idle 15
BODY_COPIES = 2              # each body held as bytes and in its decoded form
MIB = 1 << 20
ZONE, HOST = "topology.kubernetes.io/zone", "kubernetes.io/hostname"

QUANTITY = {"": 1, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30}


def duration(value):
    """Seconds of a gateway duration (`500ms`, `10s`, `2m`, `1h`, `1d`)."""
    if isinstance(value, (int, float)):
        return float(value)
    m = re.fullmatch(r"([0-9]+)(ms|s|m|h|d)", str(value).strip())
    if not m:
        raise ValueError(f"not a duration: {value!r}")
    return int(m[1]) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[m[2]]


def quantity(value):
    """Bytes of a Kubernetes memory quantity (`128Mi`, `1Gi`, `134217728`)."""
    m = re.fullmatch(r"([0-9.]+)([kMG]i?|Ki)?", str(value))
    if not m or (m[2] or "") not in QUANTITY:
        raise ValueError(f"not a memory quantity: {value!r}")
    return float(m[1]) * QUANTITY[m[2] or ""]


def setting(key, cfg, env, root, table=None):
    """A gateway setting as it runs: the environment, else the config file,
    else the gateway's default (read from src/)."""
    default = settings.defaults(root).get((f"{table}_{key}" if table else key).upper())
    return manifests.setting(key, env, cfg, default, table)


def memory_floor_mib(cfg, env, root, backend):
    """The worst case the caps allow: idle, plus the token map (memory and
    file stores keep every entry in memory; the file store is counted at the
    memory store's max_entries), plus every call's request body and every
    upstream exchange's response body, twice each."""
    calls = int(setting("max_concurrent_calls", cfg, env, root))
    request = int(setting("max_request_bytes", cfg, env, root))
    in_flight = int(setting("max_in_flight", cfg, env, root))
    response = int(setting("max_response_bytes", cfg, env, root))
    entries = 0 if backend.startswith("redis") else int(setting("max_entries", cfg, env, root, "token_store"))
    bodies = BODY_COPIES * (calls * request + in_flight * response)
    return IDLE_MIB + math.ceil(STORE_MIB_PER_100K * entries / 100_000) + math.ceil(bodies / MIB)


def selects_service(service, labels):
    """Whether a Service routes to pods with these labels (a Service
    without a selector routes to none of them)."""
    sel = service["spec"].get("selector") or {}
    return bool(sel) and selects({"matchLabels": sel}, labels)


def check(dep, gw, cfg, env, root, backend, by_kind):
    """Errors of one workload; `gw` is its sidecar container."""
    errs = []
    err = errs.append
    spec = dep["spec"]
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"].get("labels", {})

    # --- the shutdown budget
    delay = duration(setting("shutdown_delay", cfg, env, root))
    grace = duration(setting("shutdown_grace", cfg, env, root))
    need = APP_STOP_SECONDS + delay + grace
    have = pod.get("terminationGracePeriodSeconds")
    if have is None or have < need:
        err(f"terminationGracePeriodSeconds is {have if have is not None else 'not set (30)'}, less than the app's stop "
            f"({APP_STOP_SECONDS}s) + shutdown_delay ({delay:g}s) + shutdown_grace ({grace:g}s) = {need:g}s: "
            "SIGKILL would cut the gateway's drain")
    listen = str(setting("listen", cfg, env, root) or DEFAULT_LISTEN)
    grpc_port = None if listen.startswith("unix:") else port_of(listen)
    for svc in by_kind.get("Service", {}).values():
        if not selects_service(svc, labels):
            continue
        for p in svc["spec"].get("ports", []):
            if p.get("targetPort", p.get("port")) not in (grpc_port, "grpc"):
                continue
            name = f"Service {svc['metadata']['name']} port {p.get('name', p.get('port'))}"
            if delay < SERVICE_DELAY_SECONDS:
                err(f"{name} routes to the gateway, whose shutdown_delay is {delay:g}s: at least {SERVICE_DELAY_SECONDS}s, "
                    "so callers see the endpoint go before the gateway stops accepting")
            if cfg.get("tls_cert") and p.get("appProtocol") != "tls":
                err(f"{name}: the gateway speaks TLS itself there, so appProtocol must be tls (a mesh would treat "
                    f"{p.get('appProtocol')!r} as plaintext), is {p.get('appProtocol')!r}")

    # --- memory: the limit above what the caps allow
    limit = gw.get("resources", {}).get("limits", {}).get("memory")
    if limit is not None:
        floor = memory_floor_mib(cfg, env, root, backend)
        if quantity(limit) < floor * MIB:
            err(f"initContainer {gw['name']}: limits.memory {limit} is below the worst case its caps allow, {floor}Mi "
                "(deploy/README.md, \"Memory\"): an OOM kill would restart the sidecar under a running app")

    # --- replicas spread over zones, then hosts
    if dep["kind"] != "Job" and spec.get("replicas", 1) > 1:
        keys = [c.get("topologyKey") for c in pod.get("topologySpreadConstraints", [])
                if c.get("labelSelector") and selects(c["labelSelector"], labels)]
        if ZONE not in keys or HOST not in keys or keys.index(ZONE) > keys.index(HOST):
            err(f"{spec['replicas']} replicas: topologySpreadConstraints on {ZONE}, then {HOST}, selecting the pod, "
                f"are required (found {keys}): one zone or node going down would take every replica")
    return errs
