{{/* Chart name, cut to the 63 characters a label allows. */}}
{{- define "dcr-gateway.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Release-scoped name of every object. */}}
{{- define "dcr-gateway.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "dcr-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dcr-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "dcr-gateway.labels" -}}
{{ include "dcr-gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The gateway's image: repository@digest when image.digest is set (what
was reviewed, whatever the tag points at later), else the tag, by default the
chart's appVersion. */}}
{{- define "dcr-gateway.image" -}}
{{- include "dcr-gateway.imageRef" (list .Values.image .Chart.AppVersion) -}}
{{- end -}}
{{/* (list IMAGE-VALUES DEFAULT-TAG): repository@digest, else repository:tag. */}}
{{- define "dcr-gateway.imageRef" -}}
{{- $i := index . 0 -}}
{{- if $i.digest -}}
{{- printf "%s@%s" $i.repository $i.digest -}}
{{- else -}}
{{- printf "%s:%s" $i.repository (default (index . 1) $i.tag) -}}
{{- end -}}
{{- end -}}

{{/* Fails on value combinations that would deploy something broken. */}}
{{- define "dcr-gateway.check" -}}
{{- include "dcr-gateway.checkLifecycle" . -}}
{{- if and (gt (int .Values.replicaCount) 1) (not (hasPrefix "redis" .Values.store.backend)) -}}
{{- fail "replicaCount > 1 needs a redis store.backend (redis, redis-cluster or redis-sentinel): a file or memory store per pod splits the tokens between pods" -}}
{{- end -}}
{{- if and (ne .Values.gateway.listenHost "127.0.0.1") (not .Values.tls.enabled) -}}
{{- fail "gateway.listenHost other than 127.0.0.1 needs tls.enabled: the gRPC port would be plaintext beyond the pod" -}}
{{- end -}}
{{- if and .Values.tls.enabled (not (or .Values.tls.secretName .Values.tls.volume)) -}}
{{- fail "tls.enabled needs tls.secretName (a kubernetes.io/tls Secret) or tls.volume (e.g. csi-driver-spiffe)" -}}
{{- end -}}
{{- if and .Values.service.enabled (eq .Values.gateway.listenHost "127.0.0.1") -}}
{{- fail "service.enabled needs gateway.listenHost 0.0.0.0 (and tls.enabled)" -}}
{{- end -}}
{{- $callers := include "dcr-gateway.callersOn" . -}}
{{- if and .Values.service.enabled (not (or .Values.tls.clientAuth $callers)) -}}
{{- fail "service.enabled needs tls.clientAuth (or callers.existingSecret): without client authentication every pod that reaches the Service shares one token-store namespace" -}}
{{- end -}}
{{- if and (ne .Values.gateway.listenHost "127.0.0.1") (not (or .Values.tls.clientAuth $callers)) -}}
{{- fail "gateway.listenHost other than 127.0.0.1 needs client authentication, with or without a Service: tls.clientAuth (mutual TLS) or callers.existingSecret; otherwise any pod that reaches the port (every pod, with networkPolicy.enabled false) can read every client's secret" -}}
{{- end -}}
{{- if and .Values.callers.existingSecret (eq $callers "env") -}}
{{- fail "callers.existingSecret and gateway.extraEnv DCR_GATEWAY_CALLERS: give one of them (the gateway refuses both)" -}}
{{- end -}}
{{- /* Only the gateway writes the credentials folder. */ -}}
{{- range .Values.app.extraVolumeMounts -}}
{{- if and (eq .name "dcr-gateway-credentials") (not .readOnly) -}}
{{- fail (printf "app.extraVolumeMounts: the mount of dcr-gateway-credentials at %s needs readOnly: true (and subPath: files): only the gateway may write the credentials folder" .mountPath) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Whether callers must authenticate: "true" with callers.existingSecret,
"env" with DCR_GATEWAY_CALLERS in gateway.extraEnv (from a Secret, as the
schema requires), empty otherwise. */}}
{{- define "dcr-gateway.callersOn" -}}
{{- $on := ternary "true" "" (not (empty .Values.callers.existingSecret)) -}}
{{- range .Values.gateway.extraEnv -}}
{{- if eq .name "DCR_GATEWAY_CALLERS" }}{{ $on = "env" }}{{ end -}}
{{- end -}}
{{- $on -}}
{{- end -}}

{{/* The caller list: the Secret's callers.key, alone, mounted read-only. */}}
{{- define "dcr-gateway.callersDir" -}}
/var/run/secrets/dcr-gateway-callers
{{- end -}}

{{/* The declared clients' credentials: the sidecar mounts the emptyDir
dcr-gateway-credentials here, writable, and the gateway creates the folder
`credentialsSubPath` in it at start (credentials_dir_create), before its
startup probe passes and so before any app container starts. Every container
of the pod may write the emptyDir itself; only the gateway may write that
folder, and the app mounts just it (subPath) at credentials.mountPath. */}}
{{- define "dcr-gateway.credentialsVolumePath" -}}
/var/run/dcr-gateway/credentials-volume
{{- end -}}
{{- define "dcr-gateway.credentialsSubPath" -}}
files
{{- end -}}
{{- define "dcr-gateway.credentialsDir" -}}
{{- printf "%s/%s" (include "dcr-gateway.credentialsVolumePath" .) (include "dcr-gateway.credentialsSubPath" .) -}}
{{- end -}}

{{/* config.toml: keys are the flag names with `_` (deploy/README.md). */}}
{{- define "dcr-gateway.config" -}}
# Rendered by the dcr-gateway chart. DCR_GATEWAY_* variables win over this file.
listen = {{ printf "%s:%d" .Values.gateway.listenHost (int .Values.gateway.grpcPort) | quote }}
health_listen = {{ printf "0.0.0.0:%d" (int .Values.gateway.healthPort) | quote }}
upstream = {{ .Values.gateway.upstream | quote }}
upstream_profile = {{ .Values.gateway.profile | quote }}
{{- with .Values.gateway.registrationEndpoint }}
registration_endpoint = {{ . | quote }}
{{- end }}
require_upstream_tls = {{ .Values.gateway.requireUpstreamTls }}
log_format = {{ .Values.gateway.logFormat | quote }}
# After SIGTERM (once the app has exited): NOT_SERVING but serving, then the drain.
shutdown_delay = {{ printf "%ds" (include "dcr-gateway.shutdownDelaySeconds" . | int) | quote }}
shutdown_grace = {{ printf "%ds" (int .Values.gateway.shutdownGraceSeconds) | quote }}
{{- if .Values.gateway.initialAccessToken }}
initial_access_token_file = "/var/run/secrets/dcr-gateway/initial-access-token"
{{- end }}
{{- if .Values.tls.enabled }}
tls_cert = {{ printf "/etc/dcr-gateway/tls/%s" .Values.tls.certFile | quote }}
tls_key = {{ printf "/etc/dcr-gateway/tls/%s" .Values.tls.keyFile | quote }}
{{- if .Values.tls.clientAuth }}
tls_client_ca = {{ printf "/etc/dcr-gateway/tls/%s" .Values.tls.caFile | quote }}
{{- end }}
tls_reload_interval = {{ .Values.tls.reloadInterval | default "10s" | quote }}
{{- end }}
{{- if .Values.upstreamTls.caSecretName }}
upstream_ca_file = "/etc/dcr-gateway/upstream-ca/ca.crt"
{{- end }}
{{- if .Values.upstreamTls.clientCertSecretName }}
upstream_client_cert = "/etc/dcr-gateway/upstream-client/tls.crt"
upstream_client_key = "/etc/dcr-gateway/upstream-client/tls.key"
{{- end }}
{{- if .Values.metrics.enabled }}
# /metrics alone on the pod address, for Prometheus; /readyz stays on loopback.
metrics_listen = {{ printf "0.0.0.0:%d" (int .Values.metrics.port) | quote }}
{{- end }}
{{- with .Values.telemetry.otlpEndpoint }}
otlp_endpoint = {{ . | quote }}
otlp_protocol = {{ $.Values.telemetry.otlpProtocol | default "grpc" | quote }}
{{- end }}
{{- with .Values.telemetry.serviceName }}
service_name = {{ . | quote }}
{{- end }}
{{- if .Values.clients }}
# A folder the gateway creates (0750) inside the shared emptyDir, which is
# 0777 without the sticky bit; the app mounts only this folder, read-only.
credentials_dir = {{ include "dcr-gateway.credentialsDir" . | quote }}
credentials_dir_create = true
credentials_file_mode = "0640"
{{- end }}
{{- range $key, $value := .Values.gateway.extraConfig }}
{{ $key }} = {{ include "dcr-gateway.tomlValue" $value }}
{{- end }}

[token_store]
backend = {{ .Values.store.backend | quote }}
{{- if hasPrefix "redis" .Values.store.backend }}
# From the Secret's redis-url key: a URL with a password never in the environment.
redis_url_file = "/var/run/secrets/dcr-gateway/redis-url"
{{- end }}
{{- with .Values.store.redisPrefix }}
redis_prefix = {{ . | quote }}
{{- end }}
{{- if eq .Values.store.backend "redis-sentinel" }}
redis_sentinel_master = {{ required "store.redisSentinelMaster is required with store.backend=redis-sentinel" .Values.store.redisSentinelMaster | quote }}
{{- end }}
{{- if not (kindIs "invalid" .Values.store.redisMinReplicas) }}
redis_min_replicas = {{ int .Values.store.redisMinReplicas }}
{{- end }}
{{- if eq .Values.store.backend "memory" }}
{{- /* Nothing at rest to seal. */}}
{{- else if .Values.store.encryption }}
keys_file = "/var/run/secrets/dcr-gateway/token-store-keys"
{{- else }}
allow_plaintext_store = true
{{- end }}
{{- range .Values.clients }}

[[clients]]
{{- range $key, $value := . }}
{{ $key }} = {{ include "dcr-gateway.tomlValue" $value }}
{{- end }}
{{- end }}
{{- end -}}

{{/* A YAML value as TOML: maps as inline tables, lists as arrays, the rest
as JSON (a JSON string, number or boolean is a valid TOML one). */}}
{{- define "dcr-gateway.tomlValue" -}}
{{- if kindIs "map" . -}}
{ {{- $first := true }}{{ range $k, $v := . }}{{ if not $first }},{{ end }}{{ $first = false }} {{ toJson $k }} = {{ include "dcr-gateway.tomlValue" $v }}{{ end }} }
{{- else if kindIs "slice" . -}}
[{{ range $i, $v := . }}{{ if $i }}, {{ end }}{{ include "dcr-gateway.tomlValue" $v }}{{ end }}]
{{- else -}}
{{ toJson . }}
{{- end -}}
{{- end -}}

{{/* Every container: non-root, no privilege, read-only root, no capabilities
(containerSecurityContext; the schema keeps those fields hardened). */}}
{{- define "dcr-gateway.containerSecurityContext" -}}
{{- toYaml .Values.containerSecurityContext -}}
{{- end -}}
