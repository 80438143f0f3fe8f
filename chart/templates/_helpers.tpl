{{/*
Helpers of the ci-fixer chart. With release name "ci-fixer" the prefix
(fullname) is "ci-fixer", and the objects are named ci-fixer-app (the
service), ci-fixer-sandbox (the sandbox pods' ServiceAccount),
ci-fixer-sandbox-manager (Role) and ci-fixer-sandbox-binding (RoleBinding).
*/}}

{{/* Chart name, or nameOverride. */}}
{{- define "ci-fixer.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified prefix of every object name. Truncated so that the longest
suffix ("-sandbox-manager", 16 characters) still fits a 63-character name.
If the release name contains the chart name it is used as is.
*/}}
{{- define "ci-fixer.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 47 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 47 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 47 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Chart name and version, for the helm.sh/chart label. */}}
{{- define "ci-fixer.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Name of the service's objects (Deployment, Service, ...). */}}
{{- define "ci-fixer.appName" -}}
{{- printf "%s-app" (include "ci-fixer.fullname" .) }}
{{- end }}

{{/* Standard labels of every object. */}}
{{- define "ci-fixer.labels" -}}
helm.sh/chart: {{ include "ci-fixer.chart" . }}
{{ include "ci-fixer.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ci-fixer
{{- end }}

{{/* Selector labels: name and instance only (selectors are immutable). */}}
{{- define "ci-fixer.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ci-fixer.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The service's ServiceAccount. */}}
{{- define "ci-fixer.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ci-fixer.appName" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The sandbox pods' ServiceAccount. Not release-prefixed by default: it is
ci-fixer-sandbox, the service's built-in name (sandbox/model.c
sandbox_config_init) and the one rbac/ and k8s-manifests/ create. config.json
passes it to the service (sandbox-service-account), so another name set in
values is the one the Jobs use.
*/}}
{{- define "ci-fixer.sandboxServiceAccountName" -}}
{{- default "ci-fixer-sandbox" .Values.sandbox.serviceAccount.name }}
{{- end }}

{{/* The sandbox namespace. */}}
{{- define "ci-fixer.sandboxNamespace" -}}
{{- default .Release.Namespace .Values.sandbox.namespace }}
{{- end }}

{{/* The Secret holding the API token(s). */}}
{{- define "ci-fixer.tokenSecretName" -}}
{{- default (printf "%s-token" (include "ci-fixer.appName" .)) .Values.auth.existingSecret }}
{{- end }}

{{/* The installation's identity, the value of the ci-fixer.io/owner label on its Jobs. */}}
{{- define "ci-fixer.owner" -}}
{{- printf "%s.%s" .Release.Namespace (include "ci-fixer.fullname" .) | trunc 63 | trimSuffix "-" | trimSuffix "." }}
{{- end }}

{{/* The service image: by digest when one is given, else by tag (default appVersion). */}}
{{- define "ci-fixer.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* Refuse values that would produce a broken installation. */}}
{{- define "ci-fixer.validate" -}}
{{- if and .Values.sandbox.createNamespace (eq (include "ci-fixer.sandboxNamespace" .) .Release.Namespace) }}
{{- fail "sandbox.createNamespace=true but sandbox.namespace is the release namespace: set sandbox.createNamespace=false (and label the namespace for Pod Security restricted yourself)" }}
{{- end }}
{{- if and (not .Values.serviceAccount.create) (not .Values.serviceAccount.name) }}
{{- fail "serviceAccount.create=false needs serviceAccount.name: the service must not run as the namespace's default account" }}
{{- end }}
{{- if gt (int .Values.sandbox.defaultTimeoutSeconds) (sub (int .Values.sandbox.activeDeadlineSeconds) (int .Values.sandbox.deadlineGraceSeconds) | int) }}
{{- fail "sandbox.defaultTimeoutSeconds + sandbox.deadlineGraceSeconds must not exceed sandbox.activeDeadlineSeconds" }}
{{- end }}
{{- end }}
