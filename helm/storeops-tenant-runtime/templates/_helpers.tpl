{{/* The chart's name, or nameOverride. */}}
{{- define "storeops-rt.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The prefix of every object's name: fullnameOverride, or the release (the tenant's slug). */}}
{{- define "storeops-rt.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* <full name>-<suffix>, at most 63 characters; takes (dict "root" . "suffix" "api"). */}}
{{- define "storeops-rt.nameWith" -}}
{{- printf "%s-%s" (include "storeops-rt.fullname" .root) .suffix | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "storeops-rt.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "storeops-rt.selectorLabels" -}}
app.kubernetes.io/name: {{ include "storeops-rt.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "storeops-rt.labels" -}}
helm.sh/chart: {{ include "storeops-rt.chart" . }}
{{ include "storeops-rt.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: storeops
storeops.io/tenant-id: {{ .Values.tenant.id | quote }}
{{- end }}

{{- define "storeops-rt.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "storeops-rt.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "storeops-rt.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "storeops-rt.tenantId" -}}
{{- required "tenant.id is required: use the output of `storeops tenant helm-values <tenant>`" .Values.tenant.id }}
{{- end }}

{{- define "storeops-rt.databaseSecret" -}}
{{- default (include "storeops-rt.nameWith" (dict "root" . "suffix" "database")) .Values.database.existingSecret }}
{{- end }}

{{- define "storeops-rt.credentialsSecret" -}}
{{- default (include "storeops-rt.nameWith" (dict "root" . "suffix" "credentials")) .Values.controlPlane.credentials.existingSecret }}
{{- end }}

{{- define "storeops-rt.vaultSecret" -}}
{{- default (include "storeops-rt.nameWith" (dict "root" . "suffix" "vault-approle")) .Values.secrets.vault.existingSecret }}
{{- end }}

{{/*
The non-secret settings, for the ConfigMap: variable -> string. Helm holds numbers from
values as float64 and prints large ones in exponent form, so integers go through int64.
*/}}
{{- define "storeops-rt.settings" -}}
STOREOPS_RUNTIME_TENANT_ID: {{ include "storeops-rt.tenantId" . | quote }}
STOREOPS_RUNTIME_HOME: "/tmp/storeops"
STOREOPS_RUNTIME_CONTROL_PLANE_URL: {{ required "controlPlane.url is required" .Values.controlPlane.url | quote }}
{{- with .Values.controlPlane.tokenIssuer }}
STOREOPS_RUNTIME_TOKEN_ISSUER: {{ . | quote }}
{{- end }}
STOREOPS_RUNTIME_TOKEN_AUDIENCE: {{ .Values.controlPlane.tokenAudience | quote }}
STOREOPS_RUNTIME_SECRET_PROVIDER: {{ .Values.secrets.provider | quote }}
{{- if eq .Values.secrets.provider "vault" }}
STOREOPS_RUNTIME_VAULT_ADDR: {{ required "secrets.vault.addr is required with the vault provider" .Values.secrets.vault.addr | quote }}
{{- end }}
{{- with .Values.redis.url }}
STOREOPS_RUNTIME_REDIS_URL: {{ . | quote }}
{{- end }}
STOREOPS_RUNTIME_WORKER_THREADS: {{ .Values.runtime.workerThreads | int64 | quote }}
STOREOPS_RUNTIME_LEASE_SECONDS: {{ .Values.runtime.leaseSeconds | int64 | quote }}
STOREOPS_RUNTIME_SWEEP_SECONDS: {{ .Values.runtime.sweepSeconds | quote }}
{{- with .Values.runtime.bindings }}
STOREOPS_RUNTIME_BINDINGS: {{ toJson . | quote }}
{{- end }}
{{- if .Values.runtime.desiredState }}
STOREOPS_RUNTIME_DESIRED_FILE: "/etc/storeops/desired/desired.json"
{{- end }}
{{- range $name, $value := .Values.runtime.extra }}
{{ $name }}: {{ $value | quote }}
{{- end }}
{{- end }}

{{/* Secret references of a long-running component; takes (dict "root" . "component" "api"). */}}
{{- define "storeops-rt.secretEnv" -}}
- name: STOREOPS_RUNTIME_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "storeops-rt.databaseSecret" .root | quote }}
      key: {{ .root.Values.database.urlKey | quote }}
{{- if not .root.Values.redis.url }}
- name: STOREOPS_RUNTIME_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ required "redis.url or redis.existingSecret is required" .root.Values.redis.existingSecret | quote }}
      key: {{ .root.Values.redis.urlKey | quote }}
{{- end }}
{{- if eq .root.Values.controlPlane.auth "credentials" }}
- name: STOREOPS_RUNTIME_CLIENT_ID
  valueFrom:
    secretKeyRef:
      name: {{ include "storeops-rt.credentialsSecret" .root | quote }}
      key: {{ .root.Values.controlPlane.credentials.clientIdKey | quote }}
- name: STOREOPS_RUNTIME_CLIENT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "storeops-rt.credentialsSecret" .root | quote }}
      key: {{ .root.Values.controlPlane.credentials.clientSecretKey | quote }}
{{- else if eq .component "api" }}
- name: STOREOPS_RUNTIME_BOOTSTRAP_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ default (include "storeops-rt.nameWith" (dict "root" .root "suffix" "bootstrap")) .root.Values.controlPlane.bootstrapToken.existingSecret | quote }}
      key: {{ .root.Values.controlPlane.bootstrapToken.key | quote }}
{{- end }}
{{- if eq .root.Values.secrets.provider "vault" }}
- name: STOREOPS_RUNTIME_VAULT_ROLE_ID
  valueFrom:
    secretKeyRef:
      name: {{ include "storeops-rt.vaultSecret" .root | quote }}
      key: {{ .root.Values.secrets.vault.roleIdKey | quote }}
- name: STOREOPS_RUNTIME_VAULT_WRAPPED_SECRET_ID
  valueFrom:
    secretKeyRef:
      name: {{ include "storeops-rt.vaultSecret" .root | quote }}
      {{- if eq .component "api" }}
      key: {{ .root.Values.secrets.vault.wrappedSecretIdKeys.api | quote }}
      {{- else }}
      key: {{ .root.Values.secrets.vault.wrappedSecretIdKeys.worker | quote }}
      {{- end }}
{{- else if eq .root.Values.secrets.provider "broker" }}
- name: STOREOPS_RUNTIME_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ default (include "storeops-rt.nameWith" (dict "root" .root "suffix" "runtime-token")) .root.Values.secrets.broker.existingSecret | quote }}
      key: {{ .root.Values.secrets.broker.tokenKey | quote }}
{{- end }}
{{- with .root.Values.runtime.webhookSecrets.existingSecret }}
- name: STOREOPS_RUNTIME_WEBHOOK_SECRETS
  valueFrom:
    secretKeyRef:
      name: {{ . | quote }}
      key: {{ $.root.Values.runtime.webhookSecrets.key | quote }}
{{- end }}
{{- end }}

{{/* Annotations that tell an operator which tenant, database and Vault role a pod is for. */}}
{{- define "storeops-rt.tenantAnnotations" -}}
storeops.io/tenant-slug: {{ .Values.tenant.slug | quote }}
storeops.io/partner: {{ .Values.tenant.partner | quote }}
{{- with .Values.database.name }}
storeops.io/database: {{ . | quote }}
{{- end }}
{{- if eq .Values.secrets.provider "vault" }}
{{- with .Values.secrets.vault.role }}
storeops.io/vault-role: {{ . | quote }}
{{- end }}
{{- with .Values.secrets.vault.policy }}
storeops.io/vault-policy: {{ . | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Pod-level fields shared by every workload. The service account is set by the Deployments
only: the db-upgrade Job runs before the chart's ServiceAccount exists and needs none.
*/}}
{{- define "storeops-rt.podSpec" -}}
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

{{/* Volumes of the long-running pods: scratch space, and the desired state if given. */}}
{{- define "storeops-rt.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 256Mi
{{- if .Values.runtime.desiredState }}
- name: desired
  configMap:
    name: {{ include "storeops-rt.nameWith" (dict "root" . "suffix" "desired") }}
{{- end }}
{{- end }}

{{- define "storeops-rt.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .Values.runtime.desiredState }}
- name: desired
  mountPath: /etc/storeops/desired
  readOnly: true
{{- end }}
{{- end }}

{{/*
One egress rule to a target {cidrs, namespace, podLabels, ports}, as an item of the
NetworkPolicy's egress list (indented for it); nothing when the target names neither
addresses nor a namespace, so an empty target never means "anywhere".
*/}}
{{- define "storeops-rt.egressRule" -}}
{{- if or .cidrs .namespace }}
    - to:
        {{- range .cidrs }}
        - ipBlock:
            cidr: {{ . | quote }}
        {{- end }}
        {{- if .namespace }}
        - namespaceSelector:
            matchLabels:
              kubernetes.io/metadata.name: {{ .namespace | quote }}
          {{- with .podLabels }}
          podSelector:
            matchLabels:
              {{- toYaml . | nindent 14 }}
          {{- end }}
        {{- end }}
      ports:
        {{- range .ports }}
        - port: {{ . }}
          protocol: TCP
        {{- end }}
{{- end }}
{{- end }}
