{{/* The chart's name, or nameOverride. */}}
{{- define "storeops-cp.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The prefix of every object's name: fullnameOverride, or the release name. */}}
{{- define "storeops-cp.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* A component's object name: <full name>-<component>, at most 63 characters. */}}
{{- define "storeops-cp.componentName" -}}
{{- printf "%s-%s" (include "storeops-cp.fullname" .root) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "storeops-cp.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "storeops-cp.selectorLabels" -}}
app.kubernetes.io/name: {{ include "storeops-cp.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "storeops-cp.labels" -}}
helm.sh/chart: {{ include "storeops-cp.chart" . }}
{{ include "storeops-cp.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: storeops
{{- end }}

{{- define "storeops-cp.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "storeops-cp.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "storeops-cp.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "storeops-cp.publicUrl" -}}
{{- default (printf "https://%s" .Values.ingress.host) .Values.config.publicUrl }}
{{- end }}

{{/*
The non-secret settings as a YAML map of variable -> string. Helm holds numbers from values
as float64 and prints large ones in exponent form, so integers go through int64. The ConfigMap holds them for
the Deployments; the migration Job, a pre-install hook that runs before the ConfigMap
exists, receives them inline.
*/}}
{{- define "storeops-cp.settings" -}}
STOREOPS_HOME: "/tmp/storeops"
STOREOPS_HOST: "0.0.0.0"
STOREOPS_PORT: {{ .Values.api.port | int64 | quote }}
STOREOPS_PUBLIC_URL: {{ include "storeops-cp.publicUrl" . | quote }}
STOREOPS_LOG_LEVEL: {{ .Values.config.logLevel | quote }}
STOREOPS_JWT_AUDIENCE: {{ .Values.config.jwtAudience | quote }}
STOREOPS_JWT_ALGORITHM: {{ .Values.config.jwtAlgorithm | quote }}
STOREOPS_ACCESS_TOKEN_TTL_SECONDS: {{ .Values.config.accessTokenTtlSeconds | int64 | quote }}
STOREOPS_DB_APP_ROLE: {{ .Values.config.dbAppRole | quote }}
STOREOPS_DB_POOL_SIZE: {{ .Values.config.dbPoolSize | int64 | quote }}
STOREOPS_MAX_BODY_BYTES: {{ .Values.config.maxBodyBytes | int64 | quote }}
STOREOPS_SECRETS_BACKEND: "vault"
STOREOPS_VAULT_ADDR: {{ required "vault.addr is required" .Values.vault.addr | quote }}
STOREOPS_VAULT_MOUNT: {{ .Values.vault.mount | quote }}
STOREOPS_VAULT_PREFIX: {{ .Values.vault.prefix | quote }}
{{- range $name, $value := .Values.config.extra }}
{{ $name }}: {{ $value | quote }}
{{- end }}
{{- end }}

{{/* Secret references every long-running pod gets. */}}
{{- define "storeops-cp.secretEnv" -}}
- name: STOREOPS_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.database.existingSecret | quote }}
      key: {{ .Values.database.urlKey | quote }}
- name: STOREOPS_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.existingSecret | quote }}
      key: {{ .Values.redis.urlKey | quote }}
- name: STOREOPS_VAULT_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ .Values.vault.existingSecret | quote }}
      key: {{ .Values.vault.tokenKey | quote }}
{{- end }}

{{/*
Pod-level fields shared by every workload. The service account is set by the Deployments
only: the migration Job runs before the chart's ServiceAccount exists and needs none.
*/}}
{{- define "storeops-cp.podSpec" -}}
automountServiceAccountToken: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* The writable scratch space of a read-only root filesystem. */}}
{{- define "storeops-cp.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: 256Mi
{{- end }}
