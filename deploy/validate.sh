#!/usr/bin/env bash
# Validates everything under deploy/ offline, with no cluster, Docker or cargo:
#   - the Dockerfile against Cargo.toml (profile, bin, build context);
#   - kustomize renders of the base and the redis-replicas overlay (real kustomize,
#     from kubectl), and Helm renders of the chart with its default values and a
#     redis+TLS variant (Helm's Go engine), after helm lint;
#   - values files against values.schema.json, which must reject bad values;
#   - every rendered object and raw manifest against the Kubernetes JSON schemas
#     (strict: unknown fields fail) of several Kubernetes versions;
#   - semantic checks (native sidecar, security contexts, gRPC probes, config keys
#     that the gateway accepts, NetworkPolicy), each also shown to catch breakage.
# The tools are pinned in deploy/tools/requirements.txt and installed from PyPI
# into target/deploy-venv on first use. Rendered output: target/deploy-rendered/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${DEPLOY_VENV:-$ROOT/target/deploy-venv}
OUT=$ROOT/target/deploy-rendered
REQ=deploy/tools/requirements.txt
CHART=deploy/helm/dcr-gateway
# Native sidecars are on by default from 1.29; check an old supported, a middle and the newest bundled version.
K8S_VERSIONS=(1.30.0 1.33.0 1.37.0)
export PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1 KUBECONFIG=/dev/null
start=$SECONDS

fail() { echo "ERROR $*" >&2; exit 1; }
step() { echo "== $*"; }

command -v python3 >/dev/null || fail "python3 not found: deploy/validate.sh needs python3 with venv (apt-get install python3 python3-venv)"

# --- tools -------------------------------------------------------------------
want=$(sha256sum "$REQ" | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV" || fail "$VENV: python3 -m venv failed (apt-get install python3-venv)"
fi
if [ "$(cat "$VENV/.requirements.sha256" 2>/dev/null)" != "$want" ]; then
  step "installing $REQ into $VENV"
  "$VENV/bin/pip" install -q -r "$REQ" || fail "$REQ: pip install failed"
  echo "$want" >"$VENV/.requirements.sha256"
fi
PY=$VENV/bin/python
KUBECTL=$VENV/bin/kubectl
rm -rf "$OUT" && mkdir -p "$OUT"

# --- Dockerfile ----------------------------------------------------------------
step "Dockerfile"
"$PY" deploy/tools/check_dockerfile.py --self-test "$ROOT"

# --- kustomize -----------------------------------------------------------------
step "kustomize ($("$KUBECTL" version --client 2>/dev/null | grep -i kustomize))"
for kz in $(find deploy/kubernetes -name kustomization.yaml | sort); do
  # kustomize v5 still reads these, with a warning; the manifests must not rely on them.
  if grep -nE '^(patchesStrategicMerge|patchesJson6902|bases|vars|commonLabels):' "$kz"; then
    fail "$kz: uses a deprecated kustomize field (use patches:, resources:, labels:)"
  fi
done
"$KUBECTL" kustomize deploy/kubernetes/base >"$OUT/kustomize-base.yaml" \
  || fail "deploy/kubernetes/base: kustomize build failed"
"$KUBECTL" kustomize deploy/kubernetes/overlays/redis-replicas >"$OUT/kustomize-redis-replicas.yaml" \
  || fail "deploy/kubernetes/overlays/redis-replicas: kustomize build failed"
# The Components on a team's plain Deployment and Job.
"$KUBECTL" kustomize deploy/kubernetes/examples/plain-deployment >"$OUT/kustomize-plain-deployment.yaml" \
  || fail "deploy/kubernetes/examples/plain-deployment: kustomize build failed"
echo "ok   deploy/kubernetes: base, overlays/redis-replicas and examples/plain-deployment rendered"

# --- Helm values schema --------------------------------------------------------
step "values.schema.json"
"$VENV/bin/check-jsonschema" --check-metaschema "$CHART/values.schema.json" \
  || fail "$CHART/values.schema.json: not a valid JSON Schema"
# The schema describes complete values: variants are checked merged over values.yaml.
for f in "$CHART"/ci/*.yaml; do
  "$PY" deploy/tools/render_chart.py "$CHART" --merged-values "$OUT/values-$(basename "$f")" -f "$f"
done
# The team chart's values for this one (its dcr-gateway: key) too.
"$PY" -c 'import sys, yaml; yaml.safe_dump(yaml.safe_load(open(sys.argv[1]))["dcr-gateway"], open(sys.argv[2], "w"))' \
  deploy/helm/examples/billing/values.yaml "$OUT/billing-subchart-values.yaml"
"$PY" deploy/tools/render_chart.py "$CHART" --merged-values "$OUT/values-billing.yaml" -f "$OUT/billing-subchart-values.yaml"
"$VENV/bin/check-jsonschema" --schemafile "$CHART/values.schema.json" "$CHART/values.yaml" "$OUT"/values-*.yaml \
  || fail "$CHART: values do not match values.schema.json"
"$PY" deploy/tools/check_values_schema.py "$CHART/values.yaml" "$CHART/values.schema.json" --self-test \
  || fail "$CHART/values.schema.json: does not describe every value"
# The schema must bite: each of these is wrong and must be rejected, by
# check-jsonschema and by Helm itself.
bad=$OUT/bad-values.yaml
for wrong in 'store: {backend: sqlite}' 'gateway: {profile: keycloak}' 'gateway: {logFormat: xml}' \
             'gateway: {extraConfig: {initial_access_token: x}}' 'gateway: {extraConfig: {callers: "a=bbbbbbbbbbbbbbbbbbbb"}}' \
             'gateway: {extraEnv: [{name: DCR_GATEWAY_CALLERS, value: "a=bbbbbbbbbbbbbbbbbbbb"}]}' 'gateway: {extraConfig: {dev_upstream: true}}' \
             'gateway: {extraEnv: [{name: DCR_GATEWAY_DEV_UPSTREAM, value: "true"}]}' 'extraVolumes: [{name: node, hostPath: {path: /}}]' \
             'tls: {volume: {hostPath: {path: /etc/pki}}}' 'app: {env: [{name: DCR_CALLER_TOKEN, value: bbbbbbbbbbbbbbbbbbbb}]}' \
             'telemetry: {otlpProtocol: http}' 'unknownTopLevel: 1' 'store: {backend: file, colour: red}' \
             'replicaCount: "3"' 'store: {redisPrefix: "a:b:"}' 'gateway: {healthPort: 70000}' 'secret: {name: s, create: true, redisUrl: "http://x"}' 'clients: [{name: Billing, metadata: {}}]' 'clients: [{name: b}]' \
             'terminationGracePeriodSeconds: "45"' 'containerSecurityContext: {readOnlyRootFilesystem: false}' \
             'containerSecurityContext: {capabilities: {drop: [ALL], add: [NET_ADMIN]}}' 'podSecurityContext: {runAsNonRoot: false}' \
             'mesh: consul' 'metrics: {port: 0}' 'gateway: {probes: {startup: {periodSeconds: 0}}}' 'podLabels: {team: 1}' \
             'image: {digest: latest}'; do
  printf '%s\n' "$wrong" >"$bad"
  "$PY" deploy/tools/render_chart.py "$CHART" --merged-values "$OUT/bad-merged.yaml" -f "$bad"
  if "$VENV/bin/check-jsonschema" --schemafile "$CHART/values.schema.json" "$OUT/bad-merged.yaml" >/dev/null 2>&1; then
    fail "$CHART/values.schema.json: accepts the wrong values {$wrong}"
  fi
  "$PY" deploy/tools/render_chart.py "$CHART" -f "$bad" --expect-error "values don't meet the specifications" >/dev/null
  echo "ok   {$wrong} rejected by check-jsonschema and by Helm"
done

# --- Helm render ---------------------------------------------------------------
step "helm"
"$PY" deploy/tools/render_chart.py "$CHART" "$OUT/helm-default.yaml"
"$PY" deploy/tools/render_chart.py "$CHART" "$OUT/helm-redis-tls.yaml" -f "$CHART/ci/redis-tls-values.yaml"
"$PY" deploy/tools/render_chart.py "$CHART" "$OUT/helm-declared-clients.yaml" -f "$CHART/ci/declared-clients-values.yaml"
"$PY" deploy/tools/render_chart.py "$CHART" "$OUT/helm-istio.yaml" -f "$CHART/ci/istio-values.yaml"
"$PY" deploy/tools/render_chart.py "$CHART" "$OUT/helm-linkerd.yaml" -f "$CHART/ci/linkerd-values.yaml"
"$PY" deploy/tools/render_chart.py "$CHART" "$OUT/helm-spiffe.yaml" -f "$CHART/ci/spiffe-values.yaml"
# Redis under Sentinel: the master's name and the replica wait reach the config;
# a sentinel store without the master's name is refused.
"$PY" deploy/tools/render_chart.py "$CHART" "$OUT/helm-redis-sentinel.yaml" -f "$CHART/ci/redis-sentinel-values.yaml"
grep -q 'redis_sentinel_master = \\"tokens\\"\|redis_sentinel_master = "tokens"' "$OUT/helm-redis-sentinel.yaml" \
  || fail "$CHART: store.redisSentinelMaster does not reach the gateway's config"
grep -q 'redis_min_replicas = 1' "$OUT/helm-redis-sentinel.yaml" \
  || fail "$CHART: store.redisMinReplicas does not reach the gateway's config"
printf 'store: {backend: redis-sentinel}\nsecret: {create: true, initialAccessToken: x, tokenStoreKeys: k, redisUrl: "redis://s:26379"}\n' >"$OUT/sentinel-no-master.yaml"
"$PY" deploy/tools/render_chart.py "$CHART" -f "$OUT/sentinel-no-master.yaml" \
  --expect-error "store.redisSentinelMaster is required" >/dev/null
echo "ok   redis-sentinel: master name and replica wait rendered; a missing master name refused"
# A team's chart that depends on this one and includes the sidecar into its own
# Deployment and Job. `helm dependency update` would vendor the chart into
# charts/; a copy does the same offline.
TEAM=deploy/helm/examples/billing
rm -rf "$OUT/billing" && cp -r "$TEAM" "$OUT/billing" && mkdir -p "$OUT/billing/charts" && cp -r "$CHART" "$OUT/billing/charts/"
"$PY" deploy/tools/render_chart.py "$OUT/billing" "$OUT/helm-billing.yaml"
# Who can reach a secret: the chart refuses a writable mount of the
# credentials folder outside the gateway, and a gRPC listener beyond loopback
# without client authentication (mutual TLS or callers), Service or not.
printf 'clients: [{name: a, metadata: {}}]\napp: {extraVolumeMounts: [{name: dcr-gateway-credentials, mountPath: /c, subPath: files}]}\n' >"$bad"
"$PY" deploy/tools/render_chart.py "$CHART" -f "$bad" --expect-error "needs readOnly: true"
printf 'gateway: {listenHost: 0.0.0.0}\ntls: {enabled: true, secretName: t}\n' >"$bad"
"$PY" deploy/tools/render_chart.py "$CHART" -f "$bad" --expect-error "needs client authentication"
# Combinations the chart must refuse to render.
printf 'replicaCount: 3\n' >"$bad"
"$PY" deploy/tools/render_chart.py "$CHART" -f "$bad" --expect-error "replicaCount > 1 needs a redis store.backend"
printf 'gateway: {listenHost: 0.0.0.0}\n' >"$bad"
"$PY" deploy/tools/render_chart.py "$CHART" -f "$bad" --expect-error "needs tls.enabled"
printf 'gateway: {listenHost: 0.0.0.0}\ntls: {enabled: true, secretName: t}\nservice: {enabled: true}\n' >"$bad"
"$PY" deploy/tools/render_chart.py "$CHART" -f "$bad" --expect-error "service.enabled needs tls.clientAuth"
printf 'store: {backend: redis}\nsecret: {name: s, create: true, tokenStoreKeys: "k1=x", initialAccessToken: t}\n' >"$bad"
"$PY" deploy/tools/render_chart.py "$CHART" -f "$bad" --expect-error "secret.redisUrl is required"
printf 'deployment: {enabled: false}\nstore: {backend: memory}\nmetrics: {enabled: true, podMonitor: {enabled: true}}\n' >"$bad"
"$PY" deploy/tools/render_chart.py "$CHART" -f "$bad" --expect-error "metrics.podMonitor.selector is required"
printf 'metrics: {enabled: true, serviceMonitor: {enabled: true}}\n' >"$bad"
"$PY" deploy/tools/render_chart.py "$CHART" -f "$bad" --expect-error "metrics.serviceMonitor.enabled needs the chart's Service"
# What survives routine operations (deploy/README.md, "What survives"): a file
# store claim every including workload would share, a grace period the drain
# does not fit in, a memory limit below what the caps allow.
printf 'deployment: {enabled: false}\n' >"$bad"
"$PY" deploy/tools/render_chart.py "$CHART" -f "$bad" --expect-error "store.persistence.singlePod=true"
printf 'terminationGracePeriodSeconds: 30\n' >"$bad"
"$PY" deploy/tools/render_chart.py "$CHART" -f "$bad" --expect-error "terminationGracePeriodSeconds 30 is less than"
printf 'gateway: {resources: {limits: {memory: 64Mi}}}\n' >"$bad"
"$PY" deploy/tools/render_chart.py "$CHART" -f "$bad" --expect-error "64Mi is below the worst case"
printf 'gateway: {extraConfig: {max_request_bytes: 1048576}}\n' >"$bad"
"$PY" deploy/tools/render_chart.py "$CHART" -f "$bad" --expect-error "128Mi is below the worst case"
# The chart-made Secret's keyring from what a Secret of its name already holds
# (templates/secret.yaml looks it up; offline lookup finds nothing, so a copy
# of the chart feeds dcr-gateway.keyring a kept keyring): reused when the
# value is empty, and a value that drops one of its keys is refused.
rm -rf "$OUT/keyring" && cp -r "$CHART" "$OUT/keyring"
printf '%s\n' 'apiVersion: v1' 'kind: ConfigMap' 'metadata: {name: keyring-check}' \
  'data: {keyring: {{ include "dcr-gateway.keyring" (dict "value" .Values.secret.tokenStoreKeys "kept" "k1=KEPT" "secret" "s") | quote }}}' \
  >"$OUT/keyring/templates/keyring-check.yaml"
"$PY" deploy/tools/render_chart.py "$OUT/keyring" "$OUT/compare-keyring.yaml" >/dev/null
grep -q '^  keyring: k1=KEPT$' "$OUT/compare-keyring.yaml" || fail "$CHART: a kept keyring is not reused (dcr-gateway.keyring)"
printf 'secret: {tokenStoreKeys: "k2=NEW"}\n' >"$bad"
"$PY" deploy/tools/render_chart.py "$OUT/keyring" -f "$bad" --expect-error "drops the key k1 that the Secret s holds"
# image.digest pins the gateway's image: repository@digest.
printf 'image: {digest: "sha256:%s"}\n' "$(printf '0%.0s' {1..64})" >"$OUT/digest-values.yaml"
"$PY" deploy/tools/render_chart.py "$CHART" "$OUT/compare-digest.yaml" -f "$OUT/digest-values.yaml"
grep -q "image: registry.example.com/dcr-gateway@sha256:0\{64\}$" "$OUT/compare-digest.yaml" \
  || fail "$CHART: image.digest does not make the image reference repository@digest"

# The gateway's config file of each render, for tests/deploy_manifests.rs to load
# with the gateway's own parser and validation; and the first workload's sidecar
# (args, literal env, mount paths, the image's ENV) for it to run as configured.
for r in "$OUT"/kustomize-*.yaml "$OUT"/helm-*.yaml; do
  "$PY" - "$r" "$OUT/config-$(basename "$r" .yaml).toml" "$OUT/sidecar-$(basename "$r" .yaml).json" <<'PY'
import json, sys, yaml
sys.path.insert(0, "deploy/tools")
from manifests import SIDECAR, image_env, is_test_hook, pod_spec, workloads
import pathlib
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
cms = [d["data"]["config.toml"] for d in docs if d["kind"] == "ConfigMap" and "config.toml" in d.get("data", {}) and not is_test_hook(d)]
assert len(cms) == 1, f"{sys.argv[1]}: {len(cms)} ConfigMaps with config.toml"
open(sys.argv[2], "w").write(cms[0])
gw = next(c for c in pod_spec(workloads(docs)[0])["initContainers"] if c["name"] == SIDECAR)
json.dump({
    "args": gw["args"],
    "env": {e["name"]: e["value"] for e in gw.get("env", []) if "value" in e},
    "image_env": image_env(pathlib.Path(".")),
    "mounts": [m["mountPath"] for m in gw.get("volumeMounts", [])],
}, open(sys.argv[3], "w"), indent=1)
PY
done

# One sidecar: the kustomize Component's and the chart's template give the same
# container for the same settings, the image aside. The Component always
# mounts the credentials volume and the chart only with declared clients, so
# the chart is rendered here with one (its default values otherwise): the
# credentials mount, where the gateway creates credentials_dir, is compared too.
printf 'clients: [{name: app, metadata: {client_name: app}}]\n' >"$OUT/one-client-values.yaml"
"$PY" deploy/tools/render_chart.py "$CHART" "$OUT/compare-chart-one-client.yaml" -f "$OUT/one-client-values.yaml"
"$PY" - "$OUT/compare-chart-one-client.yaml" "$OUT/kustomize-base.yaml" <<'PY' || fail "the kustomize Component's sidecar differs from the chart's dcr-gateway.sidecar (see above)"
import sys, tomllib, yaml
def sidecar(path):
    docs = [d for d in yaml.safe_load_all(open(path)) if d and d["kind"] == "Deployment"]
    c = next(c for c in docs[0]["spec"]["template"]["spec"]["initContainers"] if c["name"] == "dcr-gateway")
    c.pop("image"); c.pop("imagePullPolicy", None)
    return c
a, b = sidecar(sys.argv[1]), sidecar(sys.argv[2])
for k in sorted(set(a) | set(b)):
    if a.get(k) != b.get(k):
        sys.exit(f"ERROR sidecar {k}: chart {a.get(k)!r} != Component {b.get(k)!r}")
# The base's config.toml puts the files where the chart's does, in the mount above.
def config(path):
    docs = [d for d in yaml.safe_load_all(open(path)) if d and d["kind"] == "ConfigMap" and "config.toml" in d.get("data", {})
            and "helm.sh/hook" not in d["metadata"].get("annotations", {})]
    return tomllib.loads(docs[0]["data"]["config.toml"])
a, b = config(sys.argv[1]), config(sys.argv[2])
for k in ("credentials_dir", "credentials_dir_create", "credentials_file_mode"):
    if a.get(k) != b.get(k):
        sys.exit(f"ERROR config.toml {k}: chart {a.get(k)!r} != kustomize base {b.get(k)!r}")
print("ok   the chart's sidecar and the kustomize Component's are the same container, credentials mount included")
PY

# --- Kubernetes schemas ----------------------------------------------------------
step "kubernetes-validate $("$VENV/bin/kubernetes-validate" --version) --strict, Kubernetes ${K8S_VERSIONS[*]}"
mapfile -t raw < <(find deploy/kubernetes -name '*.yaml' ! -name kustomization.yaml ! -name 'patch-*.yaml' \
  ! -name 'sidecar*.yaml' ! -path '*/dcr-gateway-metrics/podmonitor.yaml' | sort)
[ "${#raw[@]}" -gt 0 ] || fail "deploy/kubernetes: no manifests found"
# The Prometheus Operator's kinds have no bundled schema: check_manifests.py
# checks their fields; everything else is validated here.
mkdir -p "$OUT/core"
for r in "$OUT"/kustomize-*.yaml "$OUT"/helm-*.yaml; do
  "$PY" - "$r" "$OUT/core/$(basename "$r")" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and not d["apiVersion"].startswith("monitoring.coreos.com/")]
yaml.safe_dump_all(docs, open(sys.argv[2], "w"), sort_keys=False)
PY
done
for v in "${K8S_VERSIONS[@]}"; do
  "$VENV/bin/kubernetes-validate" --strict --quiet -k "$v" "$OUT"/core/*.yaml "${raw[@]}" \
    || fail "manifests do not validate against Kubernetes $v (see above)"
done
# The validator must bite too: an unknown field in a Deployment fails.
sed 's/^\(\s*\)readOnlyRootFilesystem: true/\1readOnlyRootFilesystem: true\n\1readOnlyRootFilesytem: true/' \
  "$OUT/kustomize-base.yaml" >"$OUT/bad-k8s.yaml"
if "$VENV/bin/kubernetes-validate" --strict --quiet -k "${K8S_VERSIONS[-1]}" "$OUT/bad-k8s.yaml" >/dev/null 2>&1; then
  fail "kubernetes-validate accepted a misspelt field: the schema check is not working"
fi
echo "ok   ${#raw[@]} raw manifests and $(ls "$OUT"/core | wc -l) renders valid; a misspelt field is rejected"

# --- semantics -------------------------------------------------------------------
step "semantic checks"
failed=0
check() { "$PY" deploy/tools/check_manifests.py --root "$ROOT" --self-test "$@" || failed=1; }
check "$OUT/kustomize-base.yaml" --store file --workloads 1
check "$OUT/kustomize-redis-replicas.yaml" --store redis --min-replicas 2 --workloads 1
check "$OUT/kustomize-plain-deployment.yaml" --store redis --workloads 2 --metrics --monitor --callers
check "$OUT/helm-default.yaml" --store file --workloads 1 --test-hook
check "$OUT/helm-redis-tls.yaml" --store redis --min-replicas 2 --workloads 1 --metrics --monitor --test-hook
check "$OUT/helm-declared-clients.yaml" --store file --workloads 1 --metrics --monitor --test-hook
check "$OUT/helm-istio.yaml" --store file --workloads 1 --metrics --mesh istio --test-hook
check "$OUT/helm-linkerd.yaml" --store file --workloads 1 --metrics --monitor --mesh linkerd --test-hook
check "$OUT/helm-billing.yaml" --store redis --workloads 2 --metrics --monitor --callers
check "$OUT/helm-spiffe.yaml" --store file --workloads 1 --test-hook
[ "$failed" = 0 ] || fail "semantic checks failed (see above)"
for s in deploy/kubernetes/base/secret.example.yaml deploy/kubernetes/overlays/*/secret.example.yaml; do
  grep -q REPLACE_ME "$s" || fail "$s: an example Secret must hold only REPLACE_ME placeholders"
  if grep -qE "^\s*-\s*$(basename "$s")" "$(dirname "$s")/kustomization.yaml"; then
    fail "$(dirname "$s")/kustomization.yaml: must not apply the example Secret"
  fi
done

rm -f "$bad" "$OUT/bad-merged.yaml" "$OUT/bad-k8s.yaml"
echo "deploy/validate.sh: all checks passed in $((SECONDS - start))s"
