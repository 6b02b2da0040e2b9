{{/* Names and labels. */}}
{{- define "session-authorizer.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "session-authorizer.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "session-authorizer.selectorLabels" -}}
app.kubernetes.io/name: {{ include "session-authorizer.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "session-authorizer.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "session-authorizer.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "session-authorizer.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "session-authorizer.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "session-authorizer.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding the core api key ("" when there is none). */}}
{{- define "session-authorizer.apiKeySecret" -}}
{{- if .Values.apiKey.existingSecret -}}
{{- .Values.apiKey.existingSecret -}}
{{- else if .Values.apiKey.value -}}
{{- printf "%s-core" (include "session-authorizer.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "session-authorizer.apiKeySecretKey" -}}
{{- if .Values.apiKey.existingSecret -}}{{ .Values.apiKey.existingSecretKey }}{{- else -}}api-key{{- end -}}
{{- end -}}

{{/*
A value as TOML: tables become inline tables, lists arrays, scalars their JSON form (a JSON string,
number or boolean is also valid TOML). Null values are left out, so the binary's default applies.
*/}}
{{- define "session-authorizer.tomlValue" -}}
{{- if kindIs "map" . -}}
{{- $parts := list -}}
{{- range $k, $v := . -}}
{{- if not (kindIs "invalid" $v) -}}
{{- $parts = append $parts (printf "%s = %s" $k (include "session-authorizer.tomlValue" $v)) -}}
{{- end -}}
{{- end -}}
{ {{- join ", " $parts -}} }
{{- else if kindIs "slice" . -}}
{{- $parts := list -}}
{{- range . -}}
{{- $parts = append $parts (include "session-authorizer.tomlValue" .) -}}
{{- end -}}
[{{- join ", " $parts -}}]
{{- else if kindIs "float64" . -}}
{{- /* YAML numbers arrive as float64; integers must stay integers in TOML. */ -}}
{{- if eq . (floor .) -}}{{ int64 . }}{{- else -}}{{ . }}{{- end -}}
{{- else -}}
{{- toJson . -}}
{{- end -}}
{{- end -}}

{{/* config.toml from .Values.config (checked against the binary by tests/it/packaging.rs). */}}
{{- define "session-authorizer.configToml" -}}
# Rendered by the session-authorizer Helm chart from .Values.config; docs/configuration.md has
# every key. The core api key comes from SESSION_AUTHORIZER__SUPERTOKENS__API_KEY.
[server]
http_listen = {{ printf "%s:%d" .Values.listenAddress (int .Values.ports.http) | quote }}
grpc_listen = {{ printf "%s:%d" .Values.listenAddress (int .Values.ports.grpc) | quote }}
{{- range $section := list "server" "supertokens" "headers" "lambda" "cache" "paths" "forward_auth" "telemetry" "assertion" }}
{{- $table := get $.Values.config $section | default dict }}
{{- if ne $section "server" }}

[{{ $section }}]
{{- end }}
{{- range $k, $v := $table }}
{{- if not (kindIs "invalid" $v) }}
{{ $k }} = {{ include "session-authorizer.tomlValue" $v }}
{{- end }}
{{- end }}
{{- if and (eq $section "assertion") $.Values.assertionKey.secretName }}
key_file = "/etc/session-authorizer-assertion/key.pem"
{{- end }}
{{- end }}
{{- with .Values.tls.secretName }}

[server.tls]
cert_file = "/etc/session-authorizer-tls/tls.crt"
key_file = "/etc/session-authorizer-tls/tls.key"
{{- with $.Values.tls.clientCaKey }}
client_ca_file = {{ printf "/etc/session-authorizer-tls/%s" . | quote }}
{{- end }}
{{- end }}
{{- range .Values.config.routes }}

[[routes]]
{{- range $k, $v := . }}
{{- if not (kindIs "invalid" $v) }}
{{ $k }} = {{ include "session-authorizer.tomlValue" $v }}
{{- end }}
{{- end }}
{{- end }}
{{ end -}}

{{/* The container, shared by the Deployment and the sidecar snippet. */}}
{{- define "session-authorizer.container" -}}
name: session-authorizer
image: {{ include "session-authorizer.image" . | quote }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
args: ["--config", "/etc/session-authorizer/config.toml", "serve"]
ports:
  - name: http
    containerPort: {{ .Values.ports.http }}
    protocol: TCP
  - name: grpc
    containerPort: {{ .Values.ports.grpc }}
    protocol: TCP
env:
  - name: RUST_LOG
    value: {{ .Values.logLevel | quote }}
  {{- with include "session-authorizer.apiKeySecret" . }}
  - name: SESSION_AUTHORIZER__SUPERTOKENS__API_KEY
    valueFrom:
      secretKeyRef:
        name: {{ . }}
        key: {{ include "session-authorizer.apiKeySecretKey" $ }}
  {{- end }}
  {{- with .Values.extraEnv }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
volumeMounts:
  - name: session-authorizer-config
    mountPath: /etc/session-authorizer
    readOnly: true
  {{- if .Values.tls.secretName }}
  - name: session-authorizer-tls
    mountPath: /etc/session-authorizer-tls
    readOnly: true
  {{- end }}
  {{- if .Values.assertionKey.secretName }}
  - name: session-authorizer-assertion
    mountPath: /etc/session-authorizer-assertion
    readOnly: true
  {{- end }}
livenessProbe:
  {{- include "session-authorizer.probe" (list . .Values.livenessProbe) | nindent 2 }}
readinessProbe:
  {{- include "session-authorizer.probe" (list . .Values.readinessProbe) | nindent 2 }}
resources:
  {{- toYaml .Values.resources | nindent 2 }}
securityContext:
  {{- toYaml .Values.securityContext | nindent 2 }}
{{- end -}}

{{- define "session-authorizer.configVolume" -}}
name: session-authorizer-config
configMap:
  name: {{ include "session-authorizer.fullname" . }}
{{- end -}}

{{/* The certificate Secret (cert-manager's tls.crt / tls.key / ca.crt), when TLS is on. */}}
{{- define "session-authorizer.tlsVolume" -}}
name: session-authorizer-tls
secret:
  secretName: {{ .Values.tls.secretName }}
{{- end -}}

{{/* The assertion signing key's Secret (key `key.pem`), shared by every replica. */}}
{{- define "session-authorizer.assertionVolume" -}}
name: session-authorizer-assertion
secret:
  secretName: {{ .Values.assertionKey.secretName }}
  items:
    - key: {{ .Values.assertionKey.key }}
      path: key.pem
{{- end -}}

{{/* A probe over TLS: HTTPS (the kubelet does not check the certificate). With client
     certificates required the kubelet cannot complete a handshake: a TCP check instead. */}}
{{- define "session-authorizer.probe" -}}
{{- $root := index . 0 -}}
{{- $probe := deepCopy (index . 1) -}}
{{- if and $root.Values.tls.secretName $root.Values.tls.clientCaKey $probe.httpGet -}}
{{- $_ := set $probe "tcpSocket" (dict "port" $probe.httpGet.port) -}}
{{- $_ := unset $probe "httpGet" -}}
{{- else if and $root.Values.tls.secretName $probe.httpGet -}}
{{- $_ := set $probe.httpGet "scheme" "HTTPS" -}}
{{- end -}}
{{- toYaml $probe -}}
{{- end -}}

{{/* Sidecar mode: the pod-spec fragment to merge into the Envoy or app pod. */}}
{{- define "session-authorizer.sidecarSnippet" -}}
# Merge into the pod template's spec (next to Envoy or the app). Envoy then reaches the
# authorizer on 127.0.0.1:{{ .Values.ports.http }} (ext_authz HTTP, path_prefix /ext-authz) or
# 127.0.0.1:{{ .Values.ports.grpc }} (ext_authz gRPC). The pod needs the ConfigMap
# {{ include "session-authorizer.fullname" . }}{{ with include "session-authorizer.apiKeySecret" . }} and the Secret {{ . }}{{ end }} in its namespace.
{{- if .Values.sidecar.native }}
# Native sidecar (Kubernetes >= 1.29): starts before the app containers and stops after them.
initContainers:
  - {{ include "session-authorizer.container" . | nindent 4 | trim }}
    restartPolicy: Always
{{- else }}
containers:
  - {{ include "session-authorizer.container" . | nindent 4 | trim }}
{{- end }}
volumes:
  - {{ include "session-authorizer.configVolume" . | nindent 4 | trim }}
  {{- if .Values.tls.secretName }}
  - {{ include "session-authorizer.tlsVolume" . | nindent 4 | trim }}
  {{- end }}
  {{- if .Values.assertionKey.secretName }}
  - {{ include "session-authorizer.assertionVolume" . | nindent 4 | trim }}
  {{- end }}
{{- end -}}
