"""What the deploy checks share: the names the manifests use, and how to find
the workloads, mounts and ports in a rendered set of manifests."""

import ipaddress

SERVICE = "dcr.v1.DynamicClientRegistration"
# The health service of the credentials files, which readiness follows.
CREDENTIALS_SERVICE = "dcr-gateway.credentials"
SIDECAR = "dcr-gateway"
# The gateway's gRPC listen address when none is set.
DEFAULT_LISTEN = "127.0.0.1:50051"
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job")


def image_env(root):
    """ENV DCR_GATEWAY_* of the runtime image, from deploy/Dockerfile."""
    env = {}
    for line in (root / "deploy/Dockerfile").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "ENV":
            for item in parts[1:]:
                if "=" in item:
                    k, v = item.split("=", 1)
                    env[k] = v
    return env


def under(path, mounts):
    """The volumeMount whose mountPath contains `path`, or None."""
    best = None
    for m in mounts:
        mp = m["mountPath"].rstrip("/")
        if path == mp or path.startswith(mp + "/"):
            if best is None or len(mp) > len(best["mountPath"]):
                best = m
    return best


def port_of(addr):
    return int(addr.rsplit(":", 1)[1])


def beyond_loopback(addr):
    """Whether a listen address (host:port, [v6]:port or unix:PATH) is
    reachable from outside the pod."""
    if addr.startswith("unix:"):
        return False
    return not ipaddress.ip_address(addr.rsplit(":", 1)[0].strip("[]")).is_loopback


def rule_ports(rule):
    """The (protocol, port) pairs one NetworkPolicy rule allows."""
    return {(p.get("protocol", "TCP"), p.get("port")) for p in rule.get("ports", [])}


def egress_ports(np):
    return {pp for rule in np["spec"].get("egress", []) for pp in rule_ports(rule)}


def is_test_hook(d):
    """A `helm test` object: not part of the release's workloads."""
    return "test" in d.get("metadata", {}).get("annotations", {}).get("helm.sh/hook", "").split(",")


def selects(selector, labels):
    """Whether a label selector (matchLabels and matchExpressions) selects
    these labels; an empty selector selects everything."""
    for k, v in selector.get("matchLabels", {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions", []):
        op, has = e["operator"], e["key"] in labels
        if (op == "In" and labels.get(e["key"]) not in e.get("values", [])) or \
           (op == "NotIn" and labels.get(e["key"]) in e.get("values", [])) or \
           (op == "Exists" and not has) or (op == "DoesNotExist" and has):
            return False
    return True


def pod_spec(d):
    return d["spec"]["template"]["spec"]


def workloads(docs):
    """Every Deployment, StatefulSet or Job (not a `helm test` one) whose pod
    has the sidecar, as an init container or (wrongly) a container."""
    return [d for d in docs if d["kind"] in WORKLOAD_KINDS and not is_test_hook(d)
            and any(c["name"] == SIDECAR for c in pod_spec(d).get("initContainers", []) + pod_spec(d).get("containers", []))]


def setting(key, env, cfg, default=None, table=None):
    """A gateway setting of the sidecar: its literal DCR_GATEWAY_* variable
    wins over the config file (`key` under `[table]` when given, whose
    variable is DCR_GATEWAY_<TABLE>_<KEY>)."""
    name = f"{table}_{key}" if table else key
    e = env.get(f"DCR_GATEWAY_{name.upper()}", {})
    section = cfg.get(table, {}) if table else cfg
    return e["value"] if "value" in e else section.get(key, default)


def flag(args, name):
    """The value of `name VALUE` in a container's args, or None."""
    return args[args.index(name) + 1] if name in args[:-1] else None
