{{/*
auth.secretEnv renders the env entries read from Secrets: DATABASE_URL from
the chart's Secret or database.existingSecret; the JWT keys from the chart's
Secret or jwt.existingSecret, optional because a verify-only deployment has
no private key and a generated pair has no public key (the service derives it).
*/}}
{{- define "auth.secretEnv" -}}
{{- $db := split "/" (include "auth.databaseSecret" .) }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $db._0 }}
      key: {{ $db._1 }}
{{- $jwtSecret := include "auth.secretName" . }}
{{- $privKey := "JWT_PRIVATE_KEY" }}
{{- $pubKey := "JWT_PUBLIC_KEY" }}
{{- if .Values.jwt.existingSecret }}
{{- $jwtSecret = .Values.jwt.existingSecret }}
{{- $privKey = .Values.jwt.existingSecretPrivateKeyKey }}
{{- $pubKey = .Values.jwt.existingSecretPublicKeyKey }}
{{- end }}
- name: JWT_PRIVATE_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $jwtSecret }}
      key: {{ $privKey }}
      optional: true
- name: JWT_PUBLIC_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $jwtSecret }}
      key: {{ $pubKey }}
      optional: true
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
