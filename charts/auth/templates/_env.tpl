{{/*
auth.secretEnv renders the env entries read from Secrets: DATABASE_URL from
the chart's Secret or database.existingSecret, and JWT_PUBLIC_KEY from the
key Secret (auth.jwtSecret). Never the private key: VerifyToken needs only
the public one, and a pod that holds the private key can mint tokens for
anyone. The public key is required, so a Secret without it stops the pod
with a message naming the Secret and the key.
*/}}
{{- define "auth.secretEnv" -}}
{{- $db := split "/" (include "auth.databaseSecret" .) }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $db._0 }}
      key: {{ $db._1 }}
{{- $jwt := split "/" (include "auth.jwtSecret" .) }}
- name: JWT_PUBLIC_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $jwt._0 }}
      key: {{ $jwt._2 }}
{{- end }}

{{/*
auth.tracingEnv is OTEL_EXPORTER_OTLP_HEADERS from tracing.headers.existingSecret
when tracing is on: headers carry a collector's API key, so never the ConfigMap.
*/}}
{{- define "auth.tracingEnv" -}}
{{- if and .Values.tracing.endpoint .Values.tracing.headers.existingSecret }}
- name: OTEL_EXPORTER_OTLP_HEADERS
  valueFrom:
    secretKeyRef:
      name: {{ .Values.tracing.headers.existingSecret }}
      key: {{ .Values.tracing.headers.existingSecretKey }}
{{- end }}
{{- end }}

{{/* auth.tracingPort is the port of tracing.endpoint (the schema requires one). */}}
{{- define "auth.tracingPort" -}}
{{- regexFind "[0-9]+$" (trimSuffix "/" .Values.tracing.endpoint) }}
{{- end }}

{{/* auth.affinity is .Values.affinity, or the anti-affinity and backend-tier preferences. */}}
{{- define "auth.affinity" -}}
{{- if .Values.affinity }}
{{- toYaml .Values.affinity }}
{{- else }}
{{- if .Values.podAntiAffinity }}
podAntiAffinity:
  {{- if eq .Values.podAntiAffinity "hard" }}
  requiredDuringSchedulingIgnoredDuringExecution:
    - topologyKey: {{ .Values.podAntiAffinityTopologyKey }}
      labelSelector:
        matchLabels:
          {{- include "auth.serverSelectorLabels" . | nindent 10 }}
  {{- else }}
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: {{ .Values.podAntiAffinityTopologyKey }}
        labelSelector:
          matchLabels:
            {{- include "auth.serverSelectorLabels" . | nindent 12 }}
  {{- end }}
{{- end }}
{{- if .Values.backendTier.enabled }}
nodeAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: {{ .Values.backendTier.weight }}
      preference:
        matchExpressions:
          - key: {{ .Values.backendTier.key }}
            operator: In
            values:
              {{- toYaml .Values.backendTier.values | nindent 14 }}
{{- end }}
{{- end }}
{{- end }}
