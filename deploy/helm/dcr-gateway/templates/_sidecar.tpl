{{/*
The sidecar as named templates, so any workload gets it from one definition:
this chart's own Deployment, and a team's Deployment, StatefulSet or Job in a
chart that depends on this one. Each takes this chart's scope: `.` here, and
`(index .Subcharts "dcr-gateway")` from a parent chart (Helm 3.7 or later), so
the values, names and image are this chart's in both places.

  initContainers:
    {{- include "dcr-gateway.sidecar" $gw | nindent 4 }}
  containers:
    - name: app
      env:
        {{- include "dcr-gateway.appEnv" $gw | nindent 8 }}
      volumeMounts:
        {{- include "dcr-gateway.appVolumeMounts" $gw | nindent 8 }}
  volumes:
    {{- include "dcr-gateway.volumes" $gw | nindent 4 }}

plus `dcr-gateway.podAnnotations` and `dcr-gateway.podSecurityContext` for the
pod. deploy/helm/examples/ holds a Deployment and a Job built this way.
*/}}

{{/* The native sidecar: an init container with restartPolicy Always. It starts
before the app containers (which wait for its startup probe), runs beside
them, and stops after them; a Job's pod still completes. */}}
{{- define "dcr-gateway.sidecar" -}}
{{- include "dcr-gateway.check" . -}}
- name: dcr-gateway
  image: {{ include "dcr-gateway.image" . | quote }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  restartPolicy: Always
  {{- if .Values.callers.existingSecret }}
  # Every call must send `authorization: Bearer TOKEN` from this list.
  args: ["serve", "--config", "/etc/dcr-gateway/config/config.toml", "--callers-file", {{ printf "%s/callers" (include "dcr-gateway.callersDir" .) | quote }}]
  {{- else }}
  args: ["serve", "--config", "/etc/dcr-gateway/config/config.toml"]
  {{- end }}
  {{- with .Values.gateway.extraEnv }}
  env:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  ports:
    {{- if .Values.tls.enabled }}
    - name: grpc
      containerPort: {{ .Values.gateway.grpcPort }}
      protocol: TCP
    {{- end }}
    - name: health
      containerPort: {{ .Values.gateway.healthPort }}
      protocol: TCP
    {{- if .Values.metrics.enabled }}
    # /metrics only; the admin listener (/readyz) stays on 127.0.0.1.
    - name: metrics
      containerPort: {{ .Values.metrics.port }}
      protocol: TCP
    {{- end }}
  # grpc.health.v1 on the plaintext health listener.
  startupProbe:
    grpc:
      port: {{ .Values.gateway.healthPort }}
      service: dcr.v1.DynamicClientRegistration
    {{- toYaml .Values.gateway.probes.startup | nindent 4 }}
  # Ready while serving and every declared client's credentials file can be
  # delivered (dcr-gateway.credentials: NOT_SERVING on shutdown too); a
  # delivery problem makes the pod unready, never restarts the sidecar.
  readinessProbe:
    grpc:
      port: {{ .Values.gateway.healthPort }}
      service: dcr-gateway.credentials
    {{- toYaml .Values.gateway.probes.readiness | nindent 4 }}
  # The server as a whole ("" turns NOT_SERVING at SIGTERM too; the kubelet
  # stops liveness probes once the pod is being deleted, so a drain is not
  # restarted).
  livenessProbe:
    grpc:
      port: {{ .Values.gateway.healthPort }}
      service: ""
    {{- toYaml .Values.gateway.probes.liveness | nindent 4 }}
  resources:
    {{- toYaml .Values.gateway.resources | nindent 4 }}
  securityContext:
    {{- include "dcr-gateway.containerSecurityContext" . | nindent 4 }}
  volumeMounts:
    - name: dcr-gateway-config
      mountPath: /etc/dcr-gateway/config
      readOnly: true
    - name: dcr-gateway-secrets
      mountPath: /var/run/secrets/dcr-gateway
      readOnly: true
    # DCR_GATEWAY_TOKEN_STORE_PATH (set in the image) points here.
    - name: dcr-gateway-token-store
      mountPath: /var/lib/dcr-gateway
    {{- if .Values.clients }}
    # The whole credentials emptyDir: the gateway creates its folder
    # (credentials_dir) in it and writes the declared clients' files there.
    - name: dcr-gateway-credentials
      mountPath: {{ include "dcr-gateway.credentialsVolumePath" . }}
    {{- end }}
    {{- if .Values.callers.existingSecret }}
    - name: dcr-gateway-callers
      mountPath: {{ include "dcr-gateway.callersDir" . }}
      readOnly: true
    {{- end }}
    {{- if .Values.tls.enabled }}
    - name: dcr-gateway-tls
      mountPath: /etc/dcr-gateway/tls
      readOnly: true
    {{- end }}
    {{- if .Values.upstreamTls.caSecretName }}
    - name: dcr-gateway-upstream-ca
      mountPath: /etc/dcr-gateway/upstream-ca
      readOnly: true
    {{- end }}
    {{- if .Values.upstreamTls.clientCertSecretName }}
    - name: dcr-gateway-upstream-client
      mountPath: /etc/dcr-gateway/upstream-client
      readOnly: true
    {{- end }}
    {{- with .Values.gateway.extraVolumeMounts }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end -}}

{{/* The app container's environment: where the gateway listens. */}}
{{- define "dcr-gateway.appEnv" -}}
- name: DCR_GATEWAY_ADDR
  value: {{ printf "127.0.0.1:%d" (int .Values.gateway.grpcPort) | quote }}
{{- end -}}

{{/* The app container's mounts: the credentials files, read-only (empty
without declared clients). Only the gateway's folder of the emptyDir
(subPath), not the volume's root, which any container could write. */}}
{{- define "dcr-gateway.appVolumeMounts" -}}
{{- if .Values.clients }}
# <name>.json per declared client: client_id, client_secret, ...
- name: dcr-gateway-credentials
  mountPath: {{ .Values.credentials.mountPath }}
  subPath: {{ include "dcr-gateway.credentialsSubPath" . }}
  readOnly: true
{{- end }}
{{- end -}}

{{/* The sidecar's volumes, each named dcr-gateway-* so they cannot clash
with the workload's own. */}}
{{- define "dcr-gateway.volumes" -}}
{{- $fullname := include "dcr-gateway.fullname" . -}}
- name: dcr-gateway-config
  configMap:
    name: {{ .ConfigMapName | default (printf "%s-config" $fullname) }}
- name: dcr-gateway-secrets
  secret:
    secretName: {{ include "dcr-gateway.secretName" . }}
    defaultMode: 288   # 0440
{{- if .Values.clients }}
# In memory: credentials never on a node's disk. Its root is 0777 without the
# sticky bit; the files live in the gateway's own folder inside it.
- name: dcr-gateway-credentials
  emptyDir:
    medium: Memory
    sizeLimit: {{ .Values.credentials.sizeLimit }}
{{- end }}
- name: dcr-gateway-token-store
  {{- if and (eq .Values.store.backend "file") .Values.store.persistence.enabled }}
  persistentVolumeClaim:
    claimName: {{ .Values.store.persistence.existingClaim | default (printf "%s-tokens" $fullname) }}
  {{- else }}
  # memory or redis backend, or no persistence: scratch space, gone with the pod.
  emptyDir:
    sizeLimit: 64Mi
  {{- end }}
{{- with .Values.callers.existingSecret }}
# The caller list alone: the Secret may hold the callers' own tokens too.
- name: dcr-gateway-callers
  secret:
    secretName: {{ . }}
    items:
      - key: {{ $.Values.callers.key }}
        path: callers
    defaultMode: 288
{{- end }}
{{- if .Values.tls.enabled }}
- name: dcr-gateway-tls
  {{- if .Values.tls.volume }}
  {{- toYaml .Values.tls.volume | nindent 2 }}
  {{- else }}
  secret:
    secretName: {{ .Values.tls.secretName }}
    defaultMode: 288
  {{- end }}
{{- end }}
{{- with .Values.upstreamTls.caSecretName }}
- name: dcr-gateway-upstream-ca
  secret:
    secretName: {{ . }}
    defaultMode: 288
{{- end }}
{{- with .Values.upstreamTls.clientCertSecretName }}
- name: dcr-gateway-upstream-client
  secret:
    secretName: {{ . }}
    defaultMode: 288
{{- end }}
{{- /* The volumes gateway.extraVolumeMounts (and app.extraVolumeMounts) name. */}}
{{- with .Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Pod annotations: a config checksum (settings changes roll the pods), the
prometheus.io/* scrape hints, the mesh's start-order switches, and
podAnnotations. */}}
{{- define "dcr-gateway.podAnnotations" -}}
{{- $a := dict "checksum/dcr-gateway-config" (include "dcr-gateway.config" . | sha256sum) }}
{{- if and .Values.metrics.enabled .Values.metrics.annotations }}
{{- $_ := set $a "prometheus.io/scrape" "true" }}
{{- $_ = set $a "prometheus.io/port" (toString .Values.metrics.port) }}
{{- $_ = set $a "prometheus.io/path" "/metrics" }}
{{- end }}
{{- /* The mesh's proxy as a native sidecar: injected ahead of dcr-gateway, so
the gateway's first upstream call already has it. */}}
{{- if eq .Values.mesh "istio" }}
{{- $_ := set $a "sidecar.istio.io/nativeSidecar" "true" }}
{{- else if eq .Values.mesh "linkerd" }}
{{- $_ := set $a "config.alpha.linkerd.io/proxy-enable-native-sidecar" "true" }}
{{- end }}
{{- /* podAnnotations win over the generated ones, with no duplicate keys. */}}
{{- toYaml (merge (deepCopy .Values.podAnnotations) $a) }}
{{- end -}}

{{/* The pod's security context: non-root, RuntimeDefault seccomp, and the
fsGroup that lets the app's group read the credentials files. */}}
{{- define "dcr-gateway.podSecurityContext" -}}
{{- toYaml .Values.podSecurityContext -}}
{{- end -}}
