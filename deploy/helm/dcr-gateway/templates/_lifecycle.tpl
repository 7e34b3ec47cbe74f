{{/*
What keeps the sidecar's state and service through routine operations
(deploy/README.md, "What survives"): names of the release's own, a shutdown
budget that covers the drain, a memory limit above what the caps allow, a
file store with one writer, replicas spread over zones and hosts.
deploy/tools/lifecycle.py checks every render with the same arithmetic.
*/}}

{{/* The Secret with the keyring: secret.name, else named after the release,
so two releases in one namespace never share a keyring. */}}
{{- define "dcr-gateway.secretName" -}}
{{- .Values.secret.name | default (include "dcr-gateway.fullname" .) -}}
{{- end -}}

{{/* The keyring of the chart-made Secret, from (dict "value" VALUE "kept"
KEYRING-ALREADY-THERE "secret" NAME): the value, else the kept keyring; a
value must keep every key of the kept one, or the tokens it sealed could no
longer be read. Removing an old key is done on the Secret itself
(deploy/README.md, "Keyring rotation"). */}}
{{- define "dcr-gateway.keyring" -}}
{{- $keys := .value | default .kept -}}
{{- $lines := list -}}
{{- range splitList "\n" $keys }}{{ $lines = append $lines (trim .) }}{{ end -}}
{{- range splitList "\n" .kept -}}
{{- if and (trim .) (not (has (trim .) $lines)) -}}
{{- fail (printf "secret.tokenStoreKeys drops the key %s that the Secret %s holds: the tokens it sealed could no longer be read. List the new key first and keep the old ones below it, or leave secret.tokenStoreKeys empty to keep the Secret's keyring (deploy/README.md, \"Keyring rotation\")" (trim . | splitList "=" | first) $.secret) -}}
{{- end -}}
{{- end -}}
{{- required "secret.tokenStoreKeys is required: one ID=BASE64 line per key (or store.encryption=false)" $keys -}}
{{- end -}}

{{/* Seconds the gateway keeps serving with health NOT_SERVING after SIGTERM:
behind the chart's Service long enough for the endpoint's removal to reach
the callers (5), else none. */}}
{{- define "dcr-gateway.shutdownDelaySeconds" -}}
{{- if kindIs "invalid" .Values.gateway.shutdownDelaySeconds -}}
{{- ternary 5 0 (and .Values.deployment.enabled .Values.service.enabled) -}}
{{- else -}}
{{- int .Values.gateway.shutdownDelaySeconds -}}
{{- end -}}
{{- end -}}

{{/* The pod's grace period: the app stops first (app.stopSeconds at most),
then the gateway waits out its delay and drains (gateway.shutdownGraceSeconds),
all before SIGKILL. For every pod that includes the sidecar. */}}
{{- define "dcr-gateway.terminationGracePeriodSeconds" -}}
{{- include "dcr-gateway.checkLifecycle" . -}}
{{- int .Values.terminationGracePeriodSeconds -}}
{{- end -}}

{{/* The worst case the gateway's caps allow, in MiB: 16 idle, the token map
(34 per 100,000 tokens, the memory store's max_entries; none with Redis), and
every call's request and every upstream exchange's response body, twice each
(bytes and decoded). A cap not in gateway.extraConfig counts at the gateway's
default. */}}
{{- define "dcr-gateway.memoryFloorMi" -}}
{{- $c := .Values.gateway.extraConfig -}}
{{- $calls := index $c "max_concurrent_calls" | default 1024 | int64 -}}
{{- $request := index $c "max_request_bytes" | default 1048576 | int64 -}}
{{- $inFlight := index $c "max_in_flight" | default 64 | int64 -}}
{{- $response := index $c "max_response_bytes" | default 1048576 | int64 -}}
{{- $bodies := mul 2 (add (mul $calls $request) (mul $inFlight $response)) -}}
{{- $store := ternary 0 34 (hasPrefix "redis" .Values.store.backend) -}}
{{- add 16 $store (div (add $bodies 1048575) 1048576) -}}
{{- end -}}

{{/* Spread over zones, then hosts, once there are several replicas;
topologySpreadConstraints replaces it. */}}
{{- define "dcr-gateway.topologySpread" -}}
{{- if .Values.topologySpreadConstraints -}}
{{- toYaml .Values.topologySpreadConstraints -}}
{{- else if gt (int .Values.replicaCount) 1 -}}
{{- range list "topology.kubernetes.io/zone" "kubernetes.io/hostname" }}
- maxSkew: 1
  topologyKey: {{ . }}
  whenUnsatisfiable: ScheduleAnyway
  labelSelector:
    matchLabels:
      {{- include "dcr-gateway.selectorLabels" $ | nindent 6 }}
  matchLabelKeys: [pod-template-hash]
{{- end }}
{{- end -}}
{{- end -}}

{{/* Refusals: what would lose tokens or cut a drain. */}}
{{- define "dcr-gateway.checkLifecycle" -}}
{{- $p := .Values.store.persistence -}}
{{- if and (not .Values.deployment.enabled) (eq .Values.store.backend "file") $p.enabled (not $p.singlePod) -}}
{{- fail "store.backend=file with deployment.enabled=false: every workload that includes dcr-gateway.sidecar, and each of its replicas, would mount the one claim (Multi-Attach errors, a locked redb file, stuck rollouts). Use a redis store.backend, or store.backend=memory (tokens die with the pod); or set store.persistence.singlePod=true if exactly one pod at a time includes the sidecar (one workload, one replica, strategy Recreate)" -}}
{{- end -}}
{{- $need := add (int .Values.app.stopSeconds) (include "dcr-gateway.shutdownDelaySeconds" . | int) (int .Values.gateway.shutdownGraceSeconds) -}}
{{- if lt (int .Values.terminationGracePeriodSeconds) $need -}}
{{- fail (printf "terminationGracePeriodSeconds %d is less than app.stopSeconds + the shutdown delay + gateway.shutdownGraceSeconds = %d: raise it, or SIGKILL cuts the gateway's drain" (int .Values.terminationGracePeriodSeconds) $need) -}}
{{- end -}}
{{- $limit := toString (dig "limits" "memory" "" .Values.gateway.resources) -}}
{{- $floor := include "dcr-gateway.memoryFloorMi" . | int64 -}}
{{- $mi := 0 -}}
{{- if regexMatch "^[0-9]+Mi$" $limit -}}
{{- $mi = trimSuffix "Mi" $limit | int64 -}}
{{- else if regexMatch "^[0-9]+Gi$" $limit -}}
{{- $mi = mul (trimSuffix "Gi" $limit | int64) 1024 -}}
{{- else -}}
{{- fail (printf "gateway.resources.limits.memory %q: give it in Mi or Gi, at least %dMi (deploy/README.md, \"Memory\")" $limit $floor) -}}
{{- end -}}
{{- if lt $mi $floor -}}
{{- fail (printf "gateway.resources.limits.memory %s is below the worst case the gateway's caps allow, %dMi (deploy/README.md, \"Memory\"): raise it, or lower max_concurrent_calls, max_request_bytes, max_in_flight or max_response_bytes in gateway.extraConfig" $limit $floor) -}}
{{- end -}}
{{- end -}}
