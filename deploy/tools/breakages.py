"""Ways to break a rendered set of manifests, for check_manifests.py
--self-test: each must be caught, so the checks are known to bite."""

import re

from manifests import SIDECAR, WORKLOAD_KINDS, is_test_hook, pod_spec, workloads

CREDENTIALS = "dcr-gateway-credentials"


def sidecar(pod):
    """The gateway's native sidecar in a pod spec."""
    return next(c for c in pod["initContainers"] if c["name"] == SIDECAR)


def config(docs, f):
    """`f` applied to the text of every config.toml of the release (not the
    `helm test` pod's own)."""
    for d in docs:
        if d["kind"] == "ConfigMap" and "config.toml" in d.get("data", {}) and not is_test_hook(d):
            d["data"]["config.toml"] = f(d["data"]["config.toml"])


def mutations(clients_declared=False, metrics=False, test_hook=False, monitor=False, mesh=None, job=False, callers=False):
    """Ways to break a render; each must be caught (more when the render
    declares clients, has metrics on or a test hook, or callers authenticate)."""
    def gw(d):
        return sidecar(pod_spec(d))

    def dep(docs):
        return next(d for d in docs if d["kind"] == "Deployment")

    def np(docs):
        return next(d for d in docs if d["kind"] == "NetworkPolicy" and "Egress" in d["spec"].get("policyTypes", []))

    def sidecar_to_containers(docs):
        p = dep(docs)["spec"]["template"]["spec"]
        c = gw(dep(docs))
        p["initContainers"].remove(c)
        c.pop("restartPolicy")
        p["containers"].append(c)

    def app_mount(docs, f):
        for c in dep(docs)["spec"]["template"]["spec"]["containers"]:
            c["volumeMounts"] = [f(m) for m in c.get("volumeMounts", []) if f(m) is not None]

    def credentials_mount(docs, f):
        """f applied to the app's mount of the credentials volume."""
        app_mount(docs, lambda m: f(m) if m["name"] == CREDENTIALS else m)

    def no_subpath(m):
        return {k: v for k, v in m.items() if k != "subPath"}

    def credentials_dir_at_volume_root(docs):
        """The layout before credentials_dir_create: the gateway writes at the
        root of the emptyDir, which the app mounts whole."""
        config(docs, lambda t: re.sub(r'(?m)^(credentials_dir = "[^"]*)/[^/"]+"', r'\1"', t))
        credentials_mount(docs, no_subpath)

    def credentials_volume(docs):
        return next(v for v in dep(docs)["spec"]["template"]["spec"]["volumes"] if v["name"] == CREDENTIALS)

    def job_sidecar_plain(docs):
        for d in docs:
            if d["kind"] == "Job":
                sidecar(pod_spec(d)).pop("restartPolicy")

    def dns_split(docs):
        """UDP 53 to kube-dns, TCP 53 to somewhere else."""
        egress = np(docs)["spec"]["egress"]
        egress[0] = {**egress[0], "ports": [{"protocol": "UDP", "port": 53}]}
        egress.append({"to": [{"ipBlock": {"cidr": "192.0.2.1/32"}}], "ports": [{"protocol": "TCP", "port": 53}]})

    def env(docs, name, value):
        gw(dep(docs)).setdefault("env", []).append({"name": name, "value": value})

    def no_client_auth(docs):
        """gRPC on every interface with TLS, but neither mutual TLS nor callers."""
        config(docs, lambda t: re.sub(r"(?m)^tls_client_ca = .*\n", "", t))
        args = gw(dep(docs))["args"]
        if "--callers-file" in args:
            i = args.index("--callers-file")
            del args[i:i + 2]
        env(docs, "DCR_GATEWAY_LISTEN", "0.0.0.0:50051")

    def writable_init_mount(docs):
        """A regular init container after the sidecar, writing the credentials folder."""
        p = dep(docs)["spec"]["template"]["spec"]
        p["initContainers"].append({
            "name": "seed", "image": "busybox", "securityContext": gw(dep(docs))["securityContext"],
            "volumeMounts": [{"name": CREDENTIALS, "mountPath": "/seed", "subPath": "files"}]})

    breakages = {
        "a mount without its volume": lambda docs: gw(dep(docs)).setdefault("volumeMounts", []).append({"name": "nowhere", "mountPath": "/nowhere"}),
        "readOnlyRootFilesystem removed": lambda docs: gw(dep(docs))["securityContext"].pop("readOnlyRootFilesystem"),
        "sidecar restartPolicy removed": lambda docs: gw(dep(docs)).pop("restartPolicy"),
        "sidecar moved to containers": sidecar_to_containers,
        "pod runAsNonRoot false": lambda docs: dep(docs)["spec"]["template"]["spec"]["securityContext"].update(runAsNonRoot=False),
        "capabilities not dropped": lambda docs: gw(dep(docs))["securityContext"].pop("capabilities"),
        "pod seccomp removed": lambda docs: dep(docs)["spec"]["template"]["spec"]["securityContext"].pop("seccompProfile"),
        "liveness probe over HTTP": lambda docs: gw(dep(docs)).update(livenessProbe={"httpGet": {"path": "/healthz", "port": 9464}}),
        "Egress policy type dropped": lambda docs: np(docs)["spec"].update(policyTypes=["Ingress"]),
        "DNS egress dropped": lambda docs: np(docs)["spec"]["egress"].pop(0),
        "DNS egress split over two rules": dns_split,
        "unknown config key": lambda docs: config(docs, lambda t: "no_such_setting = 1\n" + t),
        "bad upstream profile": lambda docs: config(docs, lambda t: t.replace('upstream_profile = "', 'upstream_profile = "x')),
        "store keyring dropped": lambda docs: config(docs, lambda t: t.replace("\nkeys_file = ", "\n# keys_file = ")),
        "store backend swapped": lambda docs: config(docs, lambda t: t.replace('backend = "', 'backend = "memory"\n#')),
        "listen on all interfaces in the clear": lambda docs: config(docs, lambda t: t.replace("\ntls_cert", "\n#").replace('listen = "127.0.0.1', 'listen = "0.0.0.0')),
        # Who can reach a secret (access.py).
        "listen on all interfaces without client authentication": no_client_auth,
        "initial access token in the ConfigMap": lambda docs: config(docs, lambda t: 'initial_access_token = "x"\n' + t),
        "keyring in the ConfigMap": lambda docs: config(docs, lambda t: t.replace("\n[token_store]\n", '\n[token_store]\nkeys = "k1=x"\n')),
        "a secret variable as a literal": lambda docs: env(docs, "DCR_GATEWAY_TOKEN_STORE_KEYS", "k1=x"),
        "dev upstream turned on": lambda docs: env(docs, "DCR_GATEWAY_DEV_UPSTREAM", "true"),
        "a hostPath volume": lambda docs: dep(docs)["spec"]["template"]["spec"]["volumes"].append({"name": "node", "hostPath": {"path": "/"}}),
    }
    if callers:
        breakages.update({
            "caller authentication dropped": lambda docs: gw(dep(docs)).update(args=gw(dep(docs))["args"][:3]),
            "caller list on a writable mount": lambda docs: [
                m.pop("readOnly") for m in gw(dep(docs))["volumeMounts"] if m["name"] == "dcr-gateway-callers"],
            "a caller token as a literal": lambda docs: [
                e.update(value="x") or e.pop("valueFrom") for c in dep(docs)["spec"]["template"]["spec"]["containers"]
                for e in c.get("env", []) if e["name"] == "DCR_CALLER_TOKEN"],
        })
    if clients_declared:
        breakages.update({
            "credentials mounted writable in the app": lambda docs: credentials_mount(docs, lambda m: {**m, "readOnly": False}),
            "an init container writes the credentials folder": writable_init_mount,
            "credentials not mounted in the app": lambda docs: app_mount(docs, lambda m: None if m["name"] == CREDENTIALS else m),
            "app mounts the credentials volume without subPath": lambda docs: credentials_mount(docs, no_subpath),
            "app mounts another folder of the credentials volume": lambda docs: credentials_mount(docs, lambda m: {**m, "subPath": "other"}),
            "credentials_dir at the root of its volume": credentials_dir_at_volume_root,
            "credentials_dir_create off": lambda docs: config(docs, lambda t: t.replace("credentials_dir_create = true", "credentials_dir_create = false")),
            "credentials read-only in the gateway": lambda docs: [
                m.update(readOnly=True) for m in gw(dep(docs))["volumeMounts"] if m["name"] == CREDENTIALS],
            "credentials volume on the node's disk": lambda docs: credentials_volume(docs)["emptyDir"].pop("medium"),
            "credentials files owner-only": lambda docs: config(docs, lambda t: t.replace('credentials_file_mode = "0640"', 'credentials_file_mode = "0600"')),
            "no pod fsGroup": lambda docs: dep(docs)["spec"]["template"]["spec"]["securityContext"].pop("fsGroup"),
            "unknown [[clients]] key": lambda docs: config(docs, lambda t: t.replace("[[clients]]\n", "[[clients]]\nrotate_every = \"1d\"\n", 1)),
        })
    def no_monitors(docs):
        docs[:] = [d for d in docs if d["kind"] not in ("PodMonitor", "ServiceMonitor")]

    if metrics:
        def no_scrape_ingress(docs):
            for d in docs:
                if d["kind"] == "NetworkPolicy":
                    d["spec"]["ingress"] = []

        def metrics_on_loopback(docs):
            config(docs, lambda t: t.replace('metrics_listen = "0.0.0.0', 'metrics_listen = "127.0.0.1'))
            for c in dep(docs)["spec"]["template"]["spec"]["initContainers"]:
                for e in c.get("env", []):
                    if e["name"] == "DCR_GATEWAY_METRICS_LISTEN":
                        e["value"] = e["value"].replace("0.0.0.0", "127.0.0.1")

        breakages.update({
            "metrics port renamed": lambda docs: [p.update(name="prom") for p in gw(dep(docs))["ports"] if p["name"] == "metrics"],
            "scrapers' ingress dropped": no_scrape_ingress,
            "metrics_listen on loopback": metrics_on_loopback,
            "scrape annotations dropped": lambda docs: dep(docs)["spec"]["template"]["metadata"]["annotations"].pop("prometheus.io/scrape"),
        })
    if monitor:
        breakages["PodMonitor dropped"] = no_monitors
    if job:
        breakages["a Job's sidecar without restartPolicy Always"] = job_sidecar_plain
    if mesh:
        breakages["mesh annotation dropped"] = lambda docs: [
            dep(docs)["spec"]["template"]["metadata"]["annotations"].pop(k, None)
            for k in ("sidecar.istio.io/nativeSidecar", "config.alpha.linkerd.io/proxy-enable-native-sidecar")]
    if test_hook:
        def test_pod_keeps_state(docs):
            for d in docs:
                if d["kind"] == "ConfigMap" and is_test_hook(d):
                    d["data"]["config.toml"] = d["data"]["config.toml"].replace('backend = "memory"', 'backend = "file"')

        breakages["test pod with the release's store"] = test_pod_keeps_state
        breakages["test pod on the release's selector"] = lambda docs: [
            d["metadata"]["labels"].update(next(x for x in docs if x["kind"] == "Deployment")["spec"]["selector"]["matchLabels"])
            for d in docs if d["kind"] == "Pod" and is_test_hook(d)]
        breakages["test pod mount without its volume"] = lambda docs: [
            d["spec"]["volumes"].pop() for d in docs if d["kind"] == "Pod" and is_test_hook(d)]
        breakages["test pod calls only health"] = lambda docs: [
            d["spec"]["containers"].pop() for d in docs if d["kind"] == "Pod" and is_test_hook(d)]
    return breakages


def survival_mutations(docs, release):
    """Breakages of what keeps a render's state and service through routine
    operations (uninstall, rollouts, drains, load), chosen by what the render
    has: Services, replicas, several workloads, a Helm release, a test pod."""
    found = workloads(docs)

    def each_pod(f):
        return lambda docs: [f(pod_spec(d)) for d in docs if d["kind"] in WORKLOAD_KINDS and not is_test_hook(d)]

    def volume(p, name):
        return next(v for v in p["volumes"] if v["name"] == name)

    def grpc_ports(docs):
        return [p for d in docs if d["kind"] == "Service" for p in d["spec"]["ports"] if p["name"] == "grpc"]

    def shared_claim(p):
        v = volume(p, "dcr-gateway-token-store")
        v.clear()
        v.update(name="dcr-gateway-token-store", persistentVolumeClaim={"claimName": f"{release or 'app'}-tokens"})

    breakages = {
        "termination grace left at Kubernetes' 30 s": each_pod(lambda p: p.pop("terminationGracePeriodSeconds", None)),
        "memory limit of 32Mi, below the caps' worst case": each_pod(lambda p: sidecar(p)["resources"]["limits"].update(memory="32Mi")),
        "caps back at the gateway's defaults (1024 calls, 1 MiB bodies)": lambda docs: config(
            docs, lambda t: re.sub(r"(?m)^max_(concurrent_calls|request_bytes|response_bytes) = .*$", "", t)),
    }
    if grpc_ports(docs):
        breakages["no shutdown delay behind a Service"] = lambda docs: config(
            docs, lambda t: re.sub(r'(?m)^shutdown_delay = "[^"]*"', 'shutdown_delay = "0s"', t))
        breakages["Service of a TLS port as appProtocol grpc"] = lambda docs: [p.update(appProtocol="grpc") for p in grpc_ports(docs)]
    if any(w["kind"] != "Job" and w["spec"].get("replicas", 1) > 1 for w in found):
        breakages["replicas not spread over zones and hosts"] = each_pod(lambda p: p.pop("topologySpreadConstraints", None))
    if len(found) > 1:
        breakages["two workloads share one token-store claim"] = each_pod(shared_claim)
    if release:
        breakages["the keyring Secret under a name every release shares"] = each_pod(
            lambda p: volume(p, "dcr-gateway-secrets")["secret"].update(secretName="dcr-gateway"))
        if any(d["kind"] == "PersistentVolumeClaim" or (d["kind"] == "Secret" and "token-store-keys" in d.get("stringData", {}))
               for d in docs):
            breakages["kept objects without helm.sh/resource-policy: keep"] = lambda docs: [
                d["metadata"].get("annotations", {}).pop("helm.sh/resource-policy", None) for d in docs]
    if any(d["kind"] == "Pod" and is_test_hook(d) for d in docs) and any(d["kind"] == "NetworkPolicy" for d in docs):
        breakages["test pod outside the NetworkPolicy"] = lambda docs: [
            d["metadata"]["labels"].update({"app.kubernetes.io/name": "elsewhere"})
            for d in docs if d["kind"] == "Pod" and is_test_hook(d)]
    return breakages
