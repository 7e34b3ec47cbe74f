"""Who can reach a secret: checks on one workload's sidecar that keep every
path to a client's secret one the manifests open on purpose.

- no secret setting in the ConfigMap (the literal env values are
  check_manifests.py's SECRET_ENV check);
- no dev upstream: a stand-in authorization server inside the pod;
- a gRPC listener beyond loopback only with client authentication: mutual TLS
  (tls_client_ca) or caller tokens;
- where the render should have caller authentication (--callers): the list
  read from a Secret volume mounted read-only, and no caller token as a
  literal env value in any container;
- no hostPath volume: the node's files, other pods' secrets among them.
"""

from manifests import DEFAULT_LISTEN, SIDECAR, beyond_loopback, flag, setting, under

# Settings whose value is a secret: in a ConfigMap anyone who may read
# ConfigMaps reads them. Each has a *_file form or a Secret-fed variable.
SECRET_KEYS = {"initial_access_token": "initial_access_token_file", "callers": "callers_file"}
SECRET_STORE_KEYS = {"keys": "keys_file", "redis_url": "redis_url_file"}
DEV_UPSTREAM_ENV = "DCR_GATEWAY_DEV_UPSTREAM"
# The variable the examples give each calling container its own token in.
CALLER_TOKEN_ENV = "DCR_CALLER_TOKEN"


def callers_file(gw, env, cfg):
    """The caller list's path (the flag wins over the environment and the file)."""
    return flag(gw.get("args", []), "--callers-file") or setting("callers_file", env, cfg)


def check_access(gw, pod, cfg, env, volumes, want_callers):
    errs = []
    err = errs.append
    store = cfg.get("token_store", {})
    for k, use in SECRET_KEYS.items():
        if k in cfg:
            err(f"config.toml sets {k}: a secret in a ConfigMap (use {use} on a mounted Secret)")
    for k, use in SECRET_STORE_KEYS.items():
        if k in store:
            err(f"config.toml sets [token_store] {k}: a secret in a ConfigMap (use {use} on a mounted Secret)")
    if "dev_upstream" in cfg or any(n.startswith(DEV_UPSTREAM_ENV) for n in env):
        err(f"the dev upstream (dev_upstream, {DEV_UPSTREAM_ENV}*) is set: a stand-in authorization server in the pod")

    # Client authentication: mutual TLS, or caller tokens from a file or a Secret-fed variable.
    cfile = callers_file(gw, env, cfg)
    callers = bool(cfile) or "valueFrom" in env.get("DCR_GATEWAY_CALLERS", {})
    listen = setting("listen", env, cfg, DEFAULT_LISTEN)
    if beyond_loopback(listen) and not (setting("tls_client_ca", env, cfg) or callers):
        err(f"listen = {listen!r} reaches beyond the pod without client authentication "
            "(tls_client_ca or a callers file): any pod that reaches it reads every client's secret")
    if want_callers and not callers:
        err(f"{SIDECAR}: caller authentication is off (no --callers-file): a port-forward or exec reads every client's secret")
    if cfile:
        m = under(cfile, gw.get("volumeMounts", []))
        if m is None or "secret" not in volumes.get(m["name"], {}) or m.get("readOnly") is not True:
            err(f"--callers-file {cfile!r}: must be on a Secret volume mounted read-only in {SIDECAR}")
    for c in pod.get("initContainers", []) + pod.get("containers", []):
        for e in c.get("env", []):
            if e["name"] == CALLER_TOKEN_ENV and "value" in e:
                err(f"container {c['name']}: env {CALLER_TOKEN_ENV} is a caller token: take it from a Secret (valueFrom)")
    for v in pod.get("volumes", []):
        if "hostPath" in v:
            err(f"volume {v['name']!r} is a hostPath: the node's files (other pods' secrets among them) in the pod")
    return errs
