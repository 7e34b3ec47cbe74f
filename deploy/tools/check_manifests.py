"""Semantic checks on one rendered set of manifests (kustomize or helm output):
the properties a schema cannot see. Usage:

  check_manifests.py RENDERED.yaml --root REPO --store file|redis|memory [--min-replicas N] [--self-test]

--self-test also breaks the render in several ways and fails unless every
breakage is caught, so the checks themselves are known to bite.
"""

import argparse
import copy
import pathlib
import posixpath
import sys
import tomllib
import urllib.parse

import yaml

import lifecycle
import settings
from access import check_access
from breakages import mutations, survival_mutations
from cross_object import check_claims, check_metrics_objects, check_release, check_test_hook, release_of
from manifests import (CREDENTIALS_SERVICE, DEFAULT_LISTEN, SERVICE, SIDECAR, beyond_loopback, egress_ports, rule_ports,
                       image_env, is_test_hook, port_of, selects, setting, under, workloads)

# Settings that hold a file path the gateway reads.
PATH_KEYS = {
    "callers_file", "initial_access_token_file", "tls_cert", "tls_key", "tls_client_ca",
    "upstream_ca_file", "upstream_client_cert", "upstream_client_key",
}
STORE_PATH_KEYS = {"keys_file", "redis_url_file"}
# Settings whose value is a secret: never a literal in a manifest.
SECRET_ENV = {
    "DCR_GATEWAY_INITIAL_ACCESS_TOKEN", "DCR_GATEWAY_TOKEN_STORE_KEYS",
    "DCR_GATEWAY_TOKEN_STORE_REDIS_URL", "DCR_GATEWAY_CALLERS",
}
ENUMS = {
    "upstream_profile": {"sharkauth", "rfc7592"},
    "log_format": {"text", "json"},
    "otlp_protocol": {"grpc", "http/protobuf"},
}


def check(docs, opts):
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    found = workloads(docs)
    if not found:
        return [f"no Deployment, StatefulSet or Job has an initContainer named {SIDECAR}"]
    if opts.workloads and len(found) != opts.workloads:
        return [f"expected {opts.workloads} workloads with the sidecar, found {len(found)}"]
    errs = []
    for w in found:
        errs += [f"{w['kind']} {w['metadata']['name']}: {e}" for e in check_workload(w, by_kind, opts)]
    errs += check_metrics_objects(docs, found, opts)
    errs += check_test_hook(docs, opts.test_hook)
    errs += check_claims(found)
    errs += check_release(docs, found, release_of(docs))
    return errs


def check_workload(dep, by_kind, opts):
    errs = []
    err = errs.append
    spec = dep["spec"]
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"].get("labels", {})
    if dep["kind"] != "Job":
        selector = spec["selector"].get("matchLabels", {})
        if not selector or any(labels.get(k) != v for k, v in selector.items()):
            err(f"selector {selector} does not match the pod labels {labels}")

    # --- the native sidecar
    inits = {c["name"]: c for c in pod.get("initContainers", [])}
    mains = {c["name"]: c for c in pod.get("containers", [])}
    if SIDECAR in mains:
        err(f"container {SIDECAR} is in containers: a native sidecar belongs in initContainers")
    gw = inits.get(SIDECAR)
    if gw is None:
        return errs + [f"no initContainer named {SIDECAR}"]
    if gw.get("restartPolicy") != "Always":
        err(f"initContainer {SIDECAR}: restartPolicy must be Always (native sidecar), is {gw.get('restartPolicy')!r}")
    args = gw.get("args", [])
    if not args or args[0] != "serve" or "--config" not in args[:-1]:
        return errs + [f"initContainer {SIDECAR}: args must be `serve --config FILE`, are {args}"]
    config_path = args[args.index("--config") + 1]

    # --- security contexts
    psc = pod.get("securityContext", {})
    if psc.get("runAsNonRoot") is not True:
        err("pod securityContext.runAsNonRoot must be true")
    if gw.get("securityContext", {}).get("runAsUser", psc.get("runAsUser")) != 65532:
        err(f"initContainer {SIDECAR}: runAsUser must be 65532 (the image's nonroot user)")
    if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        err("pod securityContext.seccompProfile.type must be RuntimeDefault")
    if pod.get("automountServiceAccountToken") is not False:
        err("pod automountServiceAccountToken must be false")
    sa = by_kind.get("ServiceAccount", {}).get(pod.get("serviceAccountName", ""))
    if sa is None and "serviceAccountName" in pod:
        err(f"ServiceAccount {pod.get('serviceAccountName')!r} of the pod is not in the render")
    elif sa is not None and sa.get("automountServiceAccountToken") is not False:
        err(f"ServiceAccount {sa['metadata']['name']}: automountServiceAccountToken must be false")
    for c in list(inits.values()) + list(mains.values()):
        sc = c.get("securityContext", {})
        name = f"container {c['name']}"
        if sc.get("readOnlyRootFilesystem") is not True:
            err(f"{name}: securityContext.readOnlyRootFilesystem must be true")
        if sc.get("allowPrivilegeEscalation") is not False:
            err(f"{name}: securityContext.allowPrivilegeEscalation must be false")
        if sc.get("privileged"):
            err(f"{name}: must not be privileged")
        if "ALL" not in sc.get("capabilities", {}).get("drop", []) or sc.get("capabilities", {}).get("add"):
            err(f"{name}: securityContext.capabilities must drop ALL and add none")
        if sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            err(f"{name}: securityContext.seccompProfile.type must be RuntimeDefault")
        if sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is not True:
            err(f"{name}: runAsNonRoot must be true")
    res = gw.get("resources", {})
    if not res.get("requests", {}).get("cpu") or not res.get("requests", {}).get("memory") or not res.get("limits", {}).get("memory"):
        err(f"initContainer {SIDECAR}: needs resources.requests cpu and memory and limits.memory")

    # --- the config file, from its ConfigMap
    mounts = gw.get("volumeMounts", [])
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for c in list(inits.values()) + list(mains.values()):
        for vm in c.get("volumeMounts", []):
            if vm["name"] not in volumes:
                err(f"container {c['name']}: mounts {vm['name']!r}, which is not a volume of the pod")
    m = under(config_path, mounts)
    cm_name = volumes.get(m["name"], {}).get("configMap", {}).get("name") if m else None
    cm = by_kind.get("ConfigMap", {}).get(cm_name)
    key = posixpath.relpath(config_path, m["mountPath"]) if m else None
    if cm is None or key not in cm.get("data", {}):
        return errs + [f"--config {config_path}: no ConfigMap in the render provides it (mount {m and m['name']}, ConfigMap {cm_name})"]
    try:
        cfg = tomllib.loads(cm["data"][key])
    except tomllib.TOMLDecodeError as e:
        return errs + [f"ConfigMap {cm_name} {key}: not valid TOML: {e}"]
    known = settings.config_keys(opts.root)
    for k, v in cfg.items():
        if k not in known:
            err(f"ConfigMap {cm_name} {key}: unknown setting {k!r} (not a field of RawConfig in src/config)")
        elif isinstance(v, dict) != (known[k] is not None):
            err(f"ConfigMap {cm_name} {key}: {k!r} must {'be' if known[k] is not None else 'not be'} a table")
        elif isinstance(v, dict):
            for sub in v:
                if sub not in known[k]:
                    err(f"ConfigMap {cm_name} {key}: unknown setting [{k}] {sub!r}")
    for k, allowed in ENUMS.items():
        if k in cfg and cfg[k] not in allowed:
            err(f"ConfigMap {cm_name} {key}: {k} = {cfg[k]!r}, not one of {sorted(allowed)}")
    store = cfg.get("token_store", {})
    backend = store.get("backend", "file")
    if backend != opts.store:
        err(f"token_store.backend is {backend!r}, this render should use {opts.store!r}")

    # --- listeners and probes
    listen = cfg.get("listen", DEFAULT_LISTEN)
    if beyond_loopback(listen) and not (cfg.get("tls_cert") and cfg.get("tls_key")):
        err(f"listen = {listen!r} reaches beyond the pod without tls_cert/tls_key")
    if "health_listen" not in cfg:
        err("health_listen is not set: kubelet gRPC probes cannot reach a loopback or TLS listener")
    else:
        hport = port_of(cfg["health_listen"])
        for probe, service in (("startupProbe", SERVICE), ("readinessProbe", CREDENTIALS_SERVICE), ("livenessProbe", "")):
            g = gw.get(probe, {}).get("grpc")
            if g is None:
                err(f"initContainer {SIDECAR}: {probe} must be a grpc probe (grpc.health.v1)")
                continue
            if g.get("port") != hport:
                err(f"initContainer {SIDECAR}: {probe} port {g.get('port')} is not health_listen's {hport}")
            if g.get("service", "") != service:
                err(f"initContainer {SIDECAR}: {probe} service must be {service!r}, is {g.get('service')!r}")

    # --- environment
    env = {e["name"]: e for e in gw.get("env", [])}
    names = settings.env_names(opts.root)
    for n, e in env.items():
        if n.startswith("DCR_GATEWAY_") and n not in names:
            err(f"initContainer {SIDECAR}: env {n} is not a setting of the gateway (no env = \"{n}\" in src)")
        if n in SECRET_ENV and "value" in e:
            err(f"initContainer {SIDECAR}: env {n} is a secret: take it from a Secret (valueFrom), not a literal")
    errs += check_access(gw, pod, cfg, env, volumes, opts.callers)

    # --- files the gateway reads must be mounted, and the Secret keys exist
    files = [(k, cfg[k]) for k in PATH_KEYS if k in cfg] + [(f"token_store.{k}", store[k]) for k in STORE_PATH_KEYS if k in store]
    for k, path in files:
        m = under(path, mounts)
        if m is None:
            err(f"{k} = {path!r} is not under any volumeMount of {SIDECAR} (the root filesystem is read-only and has no such file)")
            continue
        sec_name = volumes.get(m["name"], {}).get("secret", {}).get("secretName")
        sec = by_kind.get("Secret", {}).get(sec_name)
        if sec is not None:
            keys = set(sec.get("data", {})) | set(sec.get("stringData", {}))
            rel = posixpath.relpath(path, m["mountPath"])
            if rel not in keys:
                err(f"{k} = {path!r}: Secret {sec_name} has no key {rel!r}")

    # --- the token store
    img = image_env(opts.root)
    store_path = env.get("DCR_GATEWAY_TOKEN_STORE_PATH", {}).get("value") or img.get("DCR_GATEWAY_TOKEN_STORE_PATH") or store.get("path")
    if "path" in store and "DCR_GATEWAY_TOKEN_STORE_PATH" in img:
        err("token_store.path in the config is overridden by DCR_GATEWAY_TOKEN_STORE_PATH from the image: mount the volume at its directory instead")
    replicas = spec.get("replicas", 1) if dep["kind"] != "Job" else 1
    if backend == "file":
        m = under(store_path or "", mounts)
        if m is None:
            err(f"token store file {store_path!r} is not on a mounted volume (read-only root filesystem)")
        else:
            pvc = volumes.get(m["name"], {}).get("persistentVolumeClaim", {}).get("claimName")
            if pvc and pvc not in by_kind.get("PersistentVolumeClaim", {}):
                err(f"token store volume claims {pvc!r}, which is not in the render")
            if pvc and dep["kind"] == "Deployment" and spec.get("strategy", {}).get("type") != "Recreate":
                err("a file store on a PVC needs strategy Recreate (one writer, locked file)")
        if replicas != 1:
            err(f"the file store is one file per pod: replicas must be 1, is {replicas}")
    if backend == "redis":
        src = env.get("DCR_GATEWAY_TOKEN_STORE_REDIS_URL", {}).get("valueFrom", {}).get("secretKeyRef")
        m = under(store.get("redis_url_file", ""), mounts)
        from_file = m is not None and "secret" in volumes.get(m["name"], {})
        if not src and not from_file:
            err("redis backend: the URL must come from a Secret: token_store.redis_url_file on a Secret volume (or the env from a secretKeyRef)")
    if replicas < opts.min_replicas:
        err(f"replicas is {replicas}, this render should have at least {opts.min_replicas}")
    if backend != "memory" and (not store.get("keys_file") or store.get("allow_plaintext_store")):
        err("token_store: keys_file is required and allow_plaintext_store must not be set: a manifest should never store tokens in the clear")
    # --- shutdown budget, memory limit, spread, Services in front
    errs += lifecycle.check(dep, gw, cfg, env, opts.root, backend, by_kind)

    # --- declared clients and their credentials files
    clients = cfg.get("clients", [])
    ckeys = settings.client_keys(opts.root)
    for i, c in enumerate(clients, 1):
        for k in c:
            if k not in ckeys:
                err(f"[[clients]] {i}: unknown key {k!r} (not a field of RawClient in src/config)")
        if "name" not in c or "metadata" not in c:
            err(f"[[clients]] {i}: needs name and metadata")
    # The credentials folder's mounts, wherever it is set (the kustomize
    # Component mounts its volume with or without declared clients).
    if clients or setting("credentials_dir", env, cfg):
        errs += check_credentials(cfg, env, inits, mains, volumes, psc, bool(clients))

    # --- network policy
    nps = [n for n in by_kind.get("NetworkPolicy", {}).values() if selects(n["spec"]["podSelector"], labels)]
    full = [n for n in nps if set(n["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}]
    if not full:
        err("no NetworkPolicy with policyTypes Ingress and Egress selects the pod")
    for np in nps:
        name = f"NetworkPolicy {np['metadata']['name']}"
        for rule in np["spec"].get("ingress", []):
            if not rule.get("from") or not rule.get("ports"):
                err(f"{name}: an ingress rule without from/ports admits everyone")
    for np in full:
        name = f"NetworkPolicy {np['metadata']['name']}"
        ports = egress_ports(np)
        dns = [r for r in np["spec"].get("egress", []) if {("UDP", 53), ("TCP", 53)} <= rule_ports(r)]
        if not any("k8s-app" in str(r.get("to")) for r in dns):
            err(f"{name}: egress must allow DNS, port 53 UDP and TCP, to kube-dns in one rule")
        if any(not r.get("to") for r in np["spec"].get("egress", [])):
            err(f"{name}: an egress rule without `to` allows every destination")
        wanted = []
        up = urllib.parse.urlsplit(cfg.get("upstream", ""))
        if up.scheme:
            wanted.append(("upstream", up.port or (443 if up.scheme == "https" else 80)))
        if cfg.get("otlp_endpoint"):
            ot = urllib.parse.urlsplit(cfg["otlp_endpoint"])
            wanted.append(("otlp_endpoint", ot.port or (4317 if cfg.get("otlp_protocol") == "grpc" else 4318)))
        if backend == "redis":
            wanted.append(("redis", 6379))
        for what, port in wanted:
            if ("TCP", port) not in ports:
                err(f"{name}: no egress rule for {what} (TCP {port})")

    # --- metrics
    mlisten = env.get("DCR_GATEWAY_METRICS_LISTEN", {}).get("value") or cfg.get("metrics_listen", "off")
    mport = next((p for p in gw.get("ports", []) if p.get("name") == "metrics"), None)
    ann = spec["template"]["metadata"].get("annotations", {})
    admin = cfg.get("admin_listen", "127.0.0.1:9464")
    if admin != "off" and beyond_loopback(admin):
        err(f"admin_listen = {admin!r}: /readyz and /healthz stay on loopback (metrics_listen is for scrapers)")
    if opts.metrics:
        if mlisten == "off":
            err("metrics: metrics_listen is off")
        else:
            if not beyond_loopback(mlisten):
                err(f"metrics_listen = {mlisten!r}: a scraper cannot reach loopback")
            mp = port_of(mlisten)
            if mport is None or mport.get("containerPort") != mp:
                err(f"initContainer {SIDECAR}: no port named metrics at metrics_listen's {mp}")
            if ann.get("prometheus.io/scrape") != "true" or ann.get("prometheus.io/port") != str(mp):
                err(f"pod annotations: prometheus.io/scrape \"true\" and prometheus.io/port \"{mp}\" are missing")
            if not any(("TCP", mp) in rule_ports(r) and r.get("from")
                       for n in nps for r in n["spec"].get("ingress", [])):
                err(f"no NetworkPolicy admits the scrapers to the metrics port {mp}")
    mesh_key = {"istio": "sidecar.istio.io/nativeSidecar", "linkerd": "config.alpha.linkerd.io/proxy-enable-native-sidecar"}
    for mesh, key in mesh_key.items():
        if (opts.mesh == mesh) != (ann.get(key) == "true"):
            err(f"pod annotation {key}: {'required' if opts.mesh == mesh else 'unexpected'} (the mesh proxy must start before {SIDECAR})")
    if not opts.metrics and (mlisten != "off" or mport is not None):
        err("metrics are off for this render, yet metrics_listen or a metrics port is set")
    return errs


def check_credentials(cfg, env, inits, mains, volumes, psc, declared):
    """Where the declared clients' files are written and read. The credentials
    volume is an emptyDir, 0777 without the sticky bit: any container of the
    pod could replace files at its root. So credentials_dir is a folder the
    gateway creates (credentials_dir_create, 0750) directly inside its
    writable mount of the volume, and every other container, init containers
    included, mounts only that folder (subPath), read-only, and with declared
    clients every app container does; the files are 0640 for the pod's fsGroup."""
    errs = []
    err = errs.append
    gw = inits[SIDECAR]

    cdir = (setting("credentials_dir", env, cfg) or "").rstrip("/")
    m = under(cdir, gw.get("volumeMounts", [])) if cdir else None
    if m is None:
        return [f"credentials_dir = {cdir!r} is not on a volumeMount of {SIDECAR}"]
    rel = posixpath.relpath(cdir, m["mountPath"])
    if rel == "." or "/" in rel:
        err(f"credentials_dir {cdir!r}: must be a folder directly inside {SIDECAR}'s mount {m['mountPath']!r} "
            "(the gateway creates it in an existing parent; the volume's root is writable by every container)")
    if m.get("readOnly"):
        err(f"credentials_dir {cdir!r}: {SIDECAR} must be able to write it (its mount {m['mountPath']!r} is read-only)")
    if setting("credentials_dir_create", env, cfg) not in (True, "true"):
        err("credentials_dir_create must be true: the gateway makes credentials_dir its own (0750) inside the shared volume")
    if volumes.get(m["name"], {}).get("emptyDir", {}).get("medium") != "Memory":
        err(f"credentials volume {m['name']!r}: must be an emptyDir in memory (secrets never on a node's disk)")
    # What the app must see is credentials_dir itself: its path in the volume.
    sub = posixpath.normpath(posixpath.join(m.get("subPath", ""), rel))
    for c in list(inits.values()) + list(mains.values()):
        if c is gw:
            continue
        ams = [x for x in c.get("volumeMounts", []) if x["name"] == m["name"]]
        if not ams and c["name"] in mains and declared:
            err(f"container {c['name']}: does not mount the credentials volume {m['name']!r}")
        for am in ams:
            if am.get("readOnly") is not True:
                err(f"container {c['name']}: must mount the credentials volume read-only")
            if posixpath.normpath(am.get("subPath") or ".") != sub:
                err(f"container {c['name']}: must mount only credentials_dir's folder of {m['name']!r} "
                    f"(subPath: {sub!r}), mounts subPath {am.get('subPath')!r}")
    if setting("credentials_file_mode", env, cfg) != "0640" or psc.get("fsGroup") is None:
        err("declared clients: credentials_file_mode must be 0640 with a pod fsGroup, so the app's group can read the files")
    return errs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("rendered")
    ap.add_argument("--root", type=pathlib.Path, required=True)
    ap.add_argument("--store", choices=["memory", "file", "redis"], required=True)
    ap.add_argument("--min-replicas", type=int, default=1)
    ap.add_argument("--workloads", type=int, default=0, help="how many workloads carry the sidecar (0: any)")
    ap.add_argument("--metrics", action="store_true", help="metrics are on: metrics_listen, port, annotations, NetworkPolicy")
    ap.add_argument("--monitor", action="store_true", help="with a PodMonitor or ServiceMonitor for them")
    ap.add_argument("--mesh", choices=["istio", "linkerd"], help="the mesh whose native-sidecar annotation the pods carry")
    ap.add_argument("--test-hook", action="store_true", help="the render has the `helm test` pod")
    ap.add_argument("--callers", action="store_true", help="callers must authenticate (a callers file from a Secret)")
    ap.add_argument("--self-test", action="store_true")
    opts = ap.parse_args()
    docs = [d for d in yaml.safe_load_all(open(opts.rendered)) if d]
    errs = check(docs, opts)
    for e in errs:
        print(f"ERROR {opts.rendered}: {e}", file=sys.stderr)
    if errs:
        sys.exit(1)
    if opts.self_test:
        missed = []
        declared = any(tomllib.loads(d["data"]["config.toml"]).get("clients")
                       for d in docs if d["kind"] == "ConfigMap" and "config.toml" in d.get("data", {}))
        hook = opts.test_hook
        job = any(w["kind"] == "Job" for w in workloads(docs))
        chosen = {**mutations(declared, opts.metrics, hook, opts.monitor, opts.mesh, job, opts.callers),
                  **survival_mutations(docs, release_of(docs))}
        for what, breakit in chosen.items():
            broken = copy.deepcopy(docs)
            breakit(broken)
            if not check(broken, opts):
                missed.append(what)
        if missed:
            print(f"ERROR {opts.rendered}: the checks did not catch: {', '.join(missed)}", file=sys.stderr)
            sys.exit(1)
        print(f"ok   {opts.rendered}: semantic checks, and {len(chosen)} deliberate breakages caught")
    else:
        print(f"ok   {opts.rendered}: semantic checks")


if __name__ == "__main__":
    main()
