{{/* Chart name (or `nameOverride`), truncated to the DNS label limit. */}}
{{- define "dispatchflow.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Release-scoped full name, or `fullnameOverride`; every resource name starts with it. */}}
{{- define "dispatchflow.fullname" -}}
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

{{/* The workers' service account: the chart's own, or an existing one named in the values. */}}
{{- define "dispatchflow.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "dispatchflow.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
The topics job's service account. The job is a pre-install hook, so it runs before the chart's
regular resources exist: with `serviceAccount.create` it gets a hook-created account of its own.
*/}}
{{- define "dispatchflow.topicsServiceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- printf "%s-topics" (include "dispatchflow.serviceAccountName" .) | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- include "dispatchflow.serviceAccountName" . -}}
{{- end -}}
{{- end -}}

{{/* The name Prometheus gives the scrape job of the workers (the scraped Service's name). */}}
{{- define "dispatchflow.scrapeJob" -}}
{{- default (include "dispatchflow.fullname" .) .Values.prometheusRule.scrapeJob -}}
{{- end -}}

{{- define "dispatchflow.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "dispatchflow.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "dispatchflow.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dispatchflow.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The worker pods (not the topics job): StatefulSet, services, PDB and ServiceMonitor. */}}
{{- define "dispatchflow.workerSelectorLabels" -}}
{{ include "dispatchflow.selectorLabels" . }}
app.kubernetes.io/component: worker
{{- end -}}

{{- define "dispatchflow.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* Replicas may not exceed the partition count: a worker beyond it owns nothing. */}}
{{- define "dispatchflow.checkReplicas" -}}
{{- $partitions := int .Values.partitions -}}
{{- if gt (int .Values.replicaCount) $partitions -}}
{{- fail (printf "replicaCount (%d) exceeds partitions (%d): a worker beyond the partition count owns no partition" (int .Values.replicaCount) $partitions) -}}
{{- end -}}
{{- if and .Values.keda.enabled (gt (int .Values.keda.maxReplicas) $partitions) -}}
{{- fail (printf "keda.maxReplicas (%d) exceeds partitions (%d): a worker beyond the partition count owns no partition" (int .Values.keda.maxReplicas) $partitions) -}}
{{- end -}}
{{- if and .Values.keda.enabled (gt (int .Values.keda.minReplicas) (int .Values.keda.maxReplicas)) -}}
{{- fail (printf "keda.minReplicas (%d) exceeds keda.maxReplicas (%d)" (int .Values.keda.minReplicas) (int .Values.keda.maxReplicas)) -}}
{{- end -}}
{{- end -}}

{{/* Broker connection env vars, shared by the workers and the topics job. */}}
{{- define "dispatchflow.brokerEnv" -}}
- name: DISPATCHFLOW_BROKER_URL
  value: {{ .Values.broker.url | quote }}
- name: DISPATCHFLOW_APP_ID
  value: {{ .Values.appId | quote }}
- name: DISPATCHFLOW_SECURITY_PROTOCOL
  value: {{ .Values.broker.securityProtocol | quote }}
{{- if hasPrefix "SASL" .Values.broker.securityProtocol }}
{{- if not (and .Values.broker.sasl.mechanism .Values.broker.sasl.existingSecret) }}
{{- fail (printf "securityProtocol %s needs broker.sasl.mechanism and broker.sasl.existingSecret" .Values.broker.securityProtocol) }}
{{- end }}
- name: DISPATCHFLOW_SASL_MECHANISM
  value: {{ .Values.broker.sasl.mechanism | quote }}
- name: DISPATCHFLOW_SASL_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ .Values.broker.sasl.existingSecret }}
      key: {{ .Values.broker.sasl.usernameKey }}
- name: DISPATCHFLOW_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.broker.sasl.existingSecret }}
      key: {{ .Values.broker.sasl.passwordKey }}
{{- end }}
{{- if .Values.broker.tls.existingSecret }}
- name: DISPATCHFLOW_SSL_CAFILE
  value: {{ printf "/etc/dispatchflow/tls/%s" .Values.broker.tls.caFile | quote }}
{{- if .Values.broker.tls.certFile }}
- name: DISPATCHFLOW_SSL_CERTFILE
  value: {{ printf "/etc/dispatchflow/tls/%s" .Values.broker.tls.certFile | quote }}
{{- end }}
{{- if .Values.broker.tls.keyFile }}
- name: DISPATCHFLOW_SSL_KEYFILE
  value: {{ printf "/etc/dispatchflow/tls/%s" .Values.broker.tls.keyFile | quote }}
{{- end }}
{{- end }}
{{- end -}}
