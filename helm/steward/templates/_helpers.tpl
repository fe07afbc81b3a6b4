{{/*
Chart name, truncated to the 63 characters Kubernetes allows in a name.
*/}}
{{- define "steward.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name: the release name, plus the chart name unless the release name
already contains it. Component suffixes (-api, -worker, ...) are added by the callers, so
this keeps 56 characters for them.
*/}}
{{- define "steward.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 56 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 56 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 56 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "steward.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels. Call with (dict "ctx" $ "component" "api").
*/}}
{{- define "steward.labels" -}}
helm.sh/chart: {{ include "steward.chart" .ctx }}
{{ include "steward.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: steward
{{- end }}

{{/*
Selector labels (immutable once deployed). Call with (dict "ctx" $ "component" "api").
*/}}
{{- define "steward.selectorLabels" -}}
app.kubernetes.io/name: {{ include "steward.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
Image reference. Call with (dict "ctx" $ "image" .Values.api.image).
*/}}
{{- define "steward.image" -}}
{{- $tag := .image.tag | default .ctx.Values.image.tag | default .ctx.Chart.AppVersion -}}
{{- printf "%s:%s" .image.repository (toString $tag) }}
{{- end }}

{{/*
The name of the Secret that holds every credential; there is deliberately no default.
*/}}
{{- define "steward.secretName" -}}
{{- required "secret.existingSecret is required: create a Secret with DATABASE_URL, DATABASE_OWNER_URL, REDIS_URL, STEWARD_TOKEN_PEPPER and STEWARD_MASTER_KEY first (see values.yaml)" .Values.secret.existingSecret }}
{{- end }}

{{/*
One env entry read from the Secret. Call with (dict "ctx" $ "name" "DATABASE_URL" "key" .Values.secret.keys.databaseUrl).
*/}}
{{- define "steward.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ include "steward.secretName" .ctx }}
      key: {{ .key | quote }}
{{- end }}

{{/*
Environment shared by api, worker and the migration job: the runtime database role, Redis,
the secrets and the non-secret settings. The owner URL is added only where it is needed.
*/}}
{{- define "steward.commonEnv" -}}
- name: NODE_ENV
  value: "production"
- name: LOG_LEVEL
  value: {{ .Values.config.logLevel | quote }}
- name: REDIS_PREFIX
  value: {{ .Values.config.redisPrefix | quote }}
- name: DATABASE_POOL_MAX
  value: {{ .Values.config.databasePoolMax | quote }}
- name: TRUST_PROXY
  value: {{ .Values.config.trustProxy | quote }}
- name: GATEWAY_UPSTREAM_TIMEOUT_SECONDS
  value: {{ .Values.config.gatewayUpstreamTimeoutSeconds | default 30 | quote }}
- name: GATEWAY_ELICITATION_WAIT_SECONDS
  value: {{ .Values.config.gatewayElicitationWaitSeconds | default 300 | quote }}
- name: TASKS_MAX_RUNNING_PER_ORG
  value: {{ .Values.config.tasksMaxRunningPerOrg | quote }}
{{ include "steward.secretEnv" (dict "ctx" . "name" "DATABASE_URL" "key" .Values.secret.keys.databaseUrl) }}
{{ include "steward.secretEnv" (dict "ctx" . "name" "REDIS_URL" "key" .Values.secret.keys.redisUrl) }}
{{ include "steward.secretEnv" (dict "ctx" . "name" "STEWARD_TOKEN_PEPPER" "key" .Values.secret.keys.tokenPepper) }}
{{ include "steward.secretEnv" (dict "ctx" . "name" "STEWARD_MASTER_KEY" "key" .Values.secret.keys.masterKey) }}
{{ include "steward.secretEnv" (dict "ctx" . "name" "STEWARD_AUDIT_SIGNING_KEY" "key" .Values.secret.keys.auditSigningKey) }}
{{- if .Values.secret.keys.metricsToken }}
{{ include "steward.secretEnv" (dict "ctx" . "name" "METRICS_TOKEN" "key" .Values.secret.keys.metricsToken) }}
{{- end }}
- name: STEWARD_DATA_DIR
  value: "/data"
{{- with .Values.config.auditCheckpointUrl }}
- name: AUDIT_CHECKPOINT_URL
  value: {{ . | quote }}
{{- end }}
{{- with .Values.config.publicUrl }}
- name: STEWARD_PUBLIC_URL
  value: {{ . | quote }}
{{- end }}
{{- with .Values.config.consoleUrl }}
- name: STEWARD_CONSOLE_URL
  value: {{ . | quote }}
{{- end }}
{{- if .Values.secret.keys.anthropicApiKey }}
- name: ANTHROPIC_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "steward.secretName" . }}
      key: {{ .Values.secret.keys.anthropicApiKey | quote }}
      # Absent from the Secret: the worker refuses to start, saying so (unless config.offlineModel).
      optional: true
{{- end }}
{{- with .Values.config.anthropicBaseUrl }}
- name: ANTHROPIC_BASE_URL
  value: {{ . | quote }}
{{- end }}
{{- if .Values.config.offlineModel }}
- name: STEWARD_OFFLINE_MODEL
  value: "true"
{{- end }}
{{- with .Values.config.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- if .Values.secret.keys.otlpHeaders }}
{{ include "steward.secretEnv" (dict "ctx" . "name" "OTEL_EXPORTER_OTLP_HEADERS" "key" .Values.secret.keys.otlpHeaders) }}
{{- end }}
{{- if .Values.extraCaCerts.configMapName }}
- name: NODE_EXTRA_CA_CERTS
  value: {{ printf "/etc/steward/ca/%s" .Values.extraCaCerts.key | quote }}
{{- end }}
{{- end }}

{{/*
The in-cluster address of the API Service.
*/}}
{{- define "steward.apiUrl" -}}
{{- printf "http://%s-api:%v" (include "steward.fullname" .) .Values.api.service.port }}
{{- end }}

{{/*
Pod-level settings shared by every pod. Call with (dict "ctx" $ "values" .Values.api).
*/}}
{{- define "steward.podSpecCommon" -}}
automountServiceAccountToken: false
{{- with .ctx.Values.serviceAccountName }}
serviceAccountName: {{ . }}
{{- end }}
{{- with .ctx.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .ctx.Values.podSecurityContext | nindent 2 }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
A writable /tmp for containers whose root filesystem is read-only.
*/}}
{{- define "steward.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: 256Mi
{{- end }}

{{- define "steward.tmpVolumeMount" -}}
- name: tmp
  mountPath: /tmp
{{- end }}

{{/*
STEWARD_DATA_DIR (/data): members' workspace files (the MCP gateway in the API and the worker
both use them) and the audit checkpoint file. data.existingClaim: a ReadWriteMany claim shared by
every api and worker pod; else a per-pod emptyDir (workspace files are then not shared between
pods, and are lost with the pod).
*/}}
{{- define "steward.dataVolume" -}}
- name: data
{{- if .Values.data.existingClaim }}
  persistentVolumeClaim:
    claimName: {{ .Values.data.existingClaim | quote }}
{{- else }}
  emptyDir:
    sizeLimit: {{ .Values.data.sizeLimit | quote }}
{{- end }}
{{- end }}

{{- define "steward.dataVolumeMount" -}}
- name: data
  mountPath: /data
{{- end }}

{{/*
Extra CA certificates (extraCaCerts): a ConfigMap mounted read-only where NODE_EXTRA_CA_CERTS
points, so api, worker and the migration job trust a managed PostgreSQL's or Redis's private CA.
Renders nothing when extraCaCerts.configMapName is empty.
*/}}
{{- define "steward.caVolume" -}}
{{- if .Values.extraCaCerts.configMapName -}}
- name: extra-ca-certs
  configMap:
    name: {{ .Values.extraCaCerts.configMapName | quote }}
    items:
      - key: {{ .Values.extraCaCerts.key | quote }}
        path: {{ .Values.extraCaCerts.key | quote }}
{{- end -}}
{{- end }}

{{- define "steward.caVolumeMount" -}}
{{- if .Values.extraCaCerts.configMapName -}}
- name: extra-ca-certs
  mountPath: /etc/steward/ca
  readOnly: true
{{- end -}}
{{- end }}

{{/*
Egress of api and worker: DNS, then the rules in networkPolicy.egress.
*/}}
{{- define "steward.egressRules" -}}
- ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
{{- with .Values.networkPolicy.egress }}
{{ toYaml . }}
{{- end }}
{{- end }}
