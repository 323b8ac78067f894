{{/* Names and labels shared by every template. */}}

{{- define "feast-lineage-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The prefix of every object's name: the release name when it already says what the chart is. */}}
{{- define "feast-lineage-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "feast-lineage-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "feast-lineage-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "feast-lineage-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "feast-lineage-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: feast-lineage
{{- end }}

{{- define "feast-lineage-operator.serviceAccountName" -}}
{{- default (include "feast-lineage-operator.fullname" .) .Values.serviceAccount.name }}
{{- end }}

{{- define "feast-lineage-operator.webhookConfigurationName" -}}
{{- printf "%s-injection" (include "feast-lineage-operator.fullname" .) }}
{{- end }}

{{- define "feast-lineage-operator.provenanceConfigurationName" -}}
{{- printf "%s-provenance" (include "feast-lineage-operator.fullname" .) }}
{{- end }}

{{- define "feast-lineage-operator.validationConfigurationName" -}}
{{- printf "%s-validation" (include "feast-lineage-operator.fullname" .) }}
{{- end }}

{{/* The identity the operator has at the API server: its own requests skip the validating webhook. */}}
{{- define "feast-lineage-operator.operatorUsername" -}}
{{- printf "system:serviceaccount:%s:%s" .Release.Namespace (include "feast-lineage-operator.serviceAccountName" .) }}
{{- end }}

{{- define "feast-lineage-operator.webhookServiceName" -}}
{{- printf "%s-webhook" (include "feast-lineage-operator.fullname" .) }}
{{- end }}

{{/* The Secret with the webhook's certificate: the operator's own, or the one cert-manager issues. */}}
{{- define "feast-lineage-operator.certSecretName" -}}
{{- if .Values.webhook.certManager.enabled }}
{{- printf "%s-webhook-tls" (include "feast-lineage-operator.fullname" .) }}
{{- else }}
{{- printf "%s-webhook-cert" (include "feast-lineage-operator.fullname" .) }}
{{- end }}
{{- end }}

{{/* The Lease the operator's replicas elect their leader with. */}}
{{- define "feast-lineage-operator.leaseName" -}}
{{- include "feast-lineage-operator.fullname" . }}
{{- end }}

{{- define "feast-lineage-operator.certificateName" -}}
{{- printf "%s-webhook" (include "feast-lineage-operator.fullname" .) }}
{{- end }}

{{/* DNS names the API server may use to reach the webhook Service. */}}
{{- define "feast-lineage-operator.webhookDnsNames" -}}
{{- $service := include "feast-lineage-operator.webhookServiceName" . }}
{{- list (printf "%s.%s.svc" $service .Release.Namespace) (printf "%s.%s.svc.%s" $service .Release.Namespace .Values.clusterDomain) | toJson }}
{{- end }}

{{- define "feast-lineage-operator.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{- define "feast-lineage-operator.runnerImage" -}}
{{- default (include "feast-lineage-operator.image" .) .Values.runner.image }}
{{- end }}

{{- define "feast-lineage-operator.mlflowName" -}}
{{- printf "%s-mlflow" (include "feast-lineage-operator.fullname" .) }}
{{- end }}

{{/* The default tracking server: the user's, else the in-cluster one when it is enabled. */}}
{{- define "feast-lineage-operator.trackingUri" -}}
{{- if .Values.mlflow.trackingUri }}
{{- .Values.mlflow.trackingUri }}
{{- else if .Values.mlflow.server.enabled }}
{{- printf "http://%s.%s.svc:%d" (include "feast-lineage-operator.mlflowName" .) .Release.Namespace (int .Values.mlflow.server.port) }}
{{- end }}
{{- end }}

{{/* The runner ServiceAccount's namespaces: every watched one, plus any listed for cluster-wide installs. */}}
{{- define "feast-lineage-operator.runnerNamespaces" -}}
{{- concat .Values.watchNamespaces .Values.runner.serviceAccount.namespaces | uniq | toJson }}
{{- end }}

{{/* The operator's pods (the cleanup hook waits for these to be gone). */}}
{{- define "feast-lineage-operator.operatorSelectorLabels" -}}
{{ include "feast-lineage-operator.selectorLabels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{/* Objects of the post-delete hook that removes finalizers; they exist only while it runs. */}}
{{- define "feast-lineage-operator.cleanupHook" -}}
helm.sh/hook: post-delete
helm.sh/hook-weight: "-10"
helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
{{- end }}

{{/* clientConfig of a resource webhook: the webhook Service, or webhook.url, with a path. */}}
{{- define "feast-lineage-operator.resourceClientConfig" -}}
{{- if .root.Values.webhook.url -}}
url: {{ printf "%s%s" (trimSuffix "/" .root.Values.webhook.url) .path | quote }}
{{- else -}}
service:
  name: {{ include "feast-lineage-operator.webhookServiceName" .root }}
  namespace: {{ .root.Release.Namespace }}
  path: {{ .path }}
  port: 443
{{- end }}
{{- end }}
