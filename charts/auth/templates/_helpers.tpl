{{/*
The `helm create` helper set, prefixed with the chart name.
*/}}

{{/* auth.name is the chart name, or nameOverride. */}}
{{- define "auth.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
auth.fullname names the release's objects: fullnameOverride, or the release
name followed by the chart name unless the release name already contains it.
*/}}
{{- define "auth.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
auth.fullnameWith is the full name with a suffix ("grpc", "migrate"), kept
within 63 characters. Call with (list . "suffix").
*/}}
{{- define "auth.fullnameWith" -}}
{{- $ctx := index . 0 }}
{{- $suffix := index . 1 }}
{{- printf "%s-%s" (include "auth.fullname" $ctx | trunc (int (sub 62 (len $suffix))) | trimSuffix "-") $suffix }}
{{- end }}

{{/* auth.chart is chart name and version, for the helm.sh/chart label. */}}
{{- define "auth.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* auth.labels are the common labels of every object. */}}
{{- define "auth.labels" -}}
helm.sh/chart: {{ include "auth.chart" . }}
{{ include "auth.selectorLabels" . }}
app.kubernetes.io/version: {{ include "auth.imageTag" . | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.partOf }}
app.kubernetes.io/part-of: {{ . | quote }}
{{- end }}
{{- end }}

{{/* auth.selectorLabels identify the release; never helm.sh/chart or version. */}}
{{- define "auth.selectorLabels" -}}
app.kubernetes.io/name: {{ include "auth.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
auth.serverSelectorLabels select the service pods only: the migration Job and
the test pod share the release labels but not this component, so Services,
the PDB, the HPA and the NetworkPolicies never count them.
*/}}
{{- define "auth.serverSelectorLabels" -}}
{{ include "auth.selectorLabels" . }}
app.kubernetes.io/component: server
{{- end }}

{{/* auth.serviceAccountName is the ServiceAccount the service pods run as. */}}
{{- define "auth.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "auth.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
auth.namespace is where every namespaced object goes: the release namespace
(`helm install -n`), or namespaceOverride.
*/}}
{{- define "auth.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* auth.imageTag is image.tag or the chart's appVersion. */}}
{{- define "auth.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{/*
auth.image is the image every container of the release runs, as rendered:
[registry/]repository:tag, or repository[:tag]@digest with a digest (the tag
only when image.tag is set: it is then informational, the digest pins).
global.imageRegistry replaces the repository's registry, as a container
runtime reads it: its first component when that has a "." or ":" or is
"localhost"; otherwise (docker.io's short form) it is prefixed.
*/}}
{{- define "auth.image" -}}
{{- $repo := .Values.image.repository }}
{{- with (.Values.global | default dict).imageRegistry }}
{{- $parts := splitn "/" 2 $repo }}
{{- $first := $parts._0 }}
{{- if and $parts._1 (or (contains "." $first) (contains ":" $first) (eq $first "localhost")) }}
{{- $repo = $parts._1 }}
{{- end }}
{{- $repo = printf "%s/%s" (trimSuffix "/" .) $repo }}
{{- end }}
{{- if .Values.image.digest }}
{{- with .Values.image.tag }}
{{- $repo = printf "%s:%s" $repo . }}
{{- end }}
{{- printf "%s@%s" $repo .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repo (include "auth.imageTag" .) }}
{{- end }}
{{- end }}

{{/*
auth.imagePullSecrets are imagePullSecrets and global.imagePullSecrets
together, each a name or {name: …}, without repeats.
*/}}
{{- define "auth.imagePullSecrets" -}}
{{- $names := list }}
{{- range concat (.Values.imagePullSecrets | default list) ((.Values.global | default dict).imagePullSecrets | default list) }}
{{- $n := kindIs "string" . | ternary . (get (kindIs "map" . | ternary . dict) "name") }}
{{- if and $n (not (has $n $names)) }}
{{- $names = append $names $n }}
{{- end }}
{{- end }}
{{- range $names }}
- name: {{ . }}
{{- end }}
{{- end }}

{{/*
auth.podLabels are the service pods' labels: podLabels merged under the
common labels, and the selector labels last, so a podLabels key that repeats
one neither renders twice (a duplicate YAML key fails the install) nor moves
the pods out of their Deployment's selector.
*/}}
{{- define "auth.podLabels" -}}
{{- $labels := merge (include "auth.serverSelectorLabels" . | fromYaml) (include "auth.labels" . | fromYaml) (deepCopy (.Values.podLabels | default dict)) }}
{{- toYaml $labels }}
{{- end }}

{{/* auth.secretName is the chart's own Secret. */}}
{{- define "auth.secretName" -}}
{{- include "auth.fullname" . }}
{{- end }}

{{/*
auth.databaseSecret is the Secret holding DATABASE_URL, as "name/key". It
fails the render at once, naming the values to set, when there is none.
*/}}
{{- define "auth.databaseSecret" -}}
{{- if .Values.database.existingSecret }}
{{- printf "%s/%s" .Values.database.existingSecret .Values.database.existingSecretKey }}
{{- else if .Values.database.url }}
{{- printf "%s/DATABASE_URL" (include "auth.secretName" .) }}
{{- else }}
{{- fail "\n\nnova-auth needs a PostgreSQL database: set database.url (e.g. --set database.url=postgres://user:pass@host:5432/nova_auth?sslmode=require)\nor database.existingSecret (a Secret with the URL under database.existingSecretKey, default DATABASE_URL)." }}
{{- end }}
{{- end }}

{{/*
auth.jwtGenerated is "true" when no key is given (jwt.existingSecret,
jwt.privateKey, jwt.publicKey): the key Job then makes the key Secret.
*/}}
{{- define "auth.jwtGenerated" -}}
{{- if not (or .Values.jwt.existingSecret .Values.jwt.privateKey .Values.jwt.publicKey) }}true{{ end }}
{{- end }}

{{/*
auth.jwtSecret is the Secret with the key pair and its two keys, as
"name/privateKeyKey/publicKeyKey": jwt.existingSecret; the chart's Secret
for keys given as values; else <fullname>-jwt, which the key Job creates
once and no render ever contains (so no render can replace the key).
*/}}
{{- define "auth.jwtSecret" -}}
{{- if .Values.jwt.existingSecret }}
{{- printf "%s/%s/%s" .Values.jwt.existingSecret .Values.jwt.existingSecretPrivateKeyKey .Values.jwt.existingSecretPublicKeyKey }}
{{- else if include "auth.jwtGenerated" . }}
{{- printf "%s/JWT_PRIVATE_KEY/JWT_PUBLIC_KEY" (include "auth.fullnameWith" (list . "jwt")) }}
{{- else }}
{{- printf "%s/JWT_PRIVATE_KEY/JWT_PUBLIC_KEY" (include "auth.secretName" .) }}
{{- end }}
{{- end }}

{{/*
auth.secretEnabled is "true" when the chart renders its own Secret: for
database.url, or for a key pair given as values.
*/}}
{{- define "auth.secretEnabled" -}}
{{- if or (not .Values.database.existingSecret) .Values.jwt.privateKey .Values.jwt.publicKey }}true{{ end }}
{{- end }}

{{/* auth.seconds renders whole seconds as a Go duration ("5s"). */}}
{{- define "auth.seconds" -}}
{{- printf "%ds" (int .) }}
{{- end }}

{{/*
auth.terminationGracePeriodSeconds fits the service's drain: unready for
SHUTDOWN_DELAY, then SHUTDOWN_TIMEOUT for in-flight calls, then 5 s to exit.
*/}}
{{- define "auth.terminationGracePeriodSeconds" -}}
{{- $drain := add (int .Values.shutdown.delaySeconds) (int .Values.shutdown.timeoutSeconds) }}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add $drain 5 }}
{{- else if le (int .Values.terminationGracePeriodSeconds) (int $drain) }}
{{- fail (printf "\n\nterminationGracePeriodSeconds=%d must exceed shutdown.delaySeconds + shutdown.timeoutSeconds = %d, or pods are killed while draining." (int .Values.terminationGracePeriodSeconds) (int $drain)) }}
{{- else }}
{{- .Values.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}

{{/*
auth.podCommon renders the pod-level securityContext and the fields every
pod of the release shares (the service, the migration Job, the test pod).
*/}}
{{- define "auth.podCommon" -}}
{{- with (include "auth.imagePullSecrets" . | trim) }}
imagePullSecrets:
  {{- . | nindent 2 }}
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
{{- end }}

{{/* auth.checkValues fails early on combinations the schema cannot express. */}}
{{- define "auth.checkValues" -}}
{{- include "auth.checkTLS" . }}
{{- if gt (int .Values.database.minConns) (int .Values.database.maxConns) }}
{{- fail (printf "\n\ndatabase.minConns=%d must not exceed database.maxConns=%d." (int .Values.database.minConns) (int .Values.database.maxConns)) }}
{{- end }}
{{- if eq (int .Values.ports.http) (int .Values.ports.grpc) }}
{{- fail (printf "\n\nports.http and ports.grpc are both %d: they must differ." (int .Values.ports.http)) }}
{{- end }}
{{- if or (eq (int .Values.ports.metrics) (int .Values.ports.http)) (eq (int .Values.ports.metrics) (int .Values.ports.grpc)) }}
{{- fail (printf "\n\nports.metrics=%d must differ from ports.http and ports.grpc: /metrics has a port of its own so that exposing REST does not expose it." (int .Values.ports.metrics)) }}
{{- end }}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- fail (printf "\n\nautoscaling.minReplicas=%d must not exceed autoscaling.maxReplicas=%d." (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- end }}
{{- include "auth.checkDisruptionBudget" . }}
{{- if and .Values.autoscaling.enabled (not .Values.autoscaling.targetCPUUtilizationPercentage) (not .Values.autoscaling.targetMemoryUtilizationPercentage) }}
{{- fail "\n\nautoscaling.enabled needs a target: set autoscaling.targetCPUUtilizationPercentage (or targetMemoryUtilizationPercentage)." }}
{{- end }}
{{- if and .Values.jwt.existingSecret (or .Values.jwt.privateKey .Values.jwt.publicKey) }}
{{- fail "\n\nSet either jwt.existingSecret or jwt.privateKey/jwt.publicKey, not both." }}
{{- end }}
{{- if and .Values.jwt.privateKey (not .Values.jwt.publicKey) }}
{{- fail "\n\njwt.privateKey is set without jwt.publicKey: the serving pods get only the public key, and a template cannot derive it.\nSet jwt.publicKey too (openssl pkey -in private.pem -pubout), or drop both and let the chart's key Job make the pair." }}
{{- end }}
{{- if and .Values.database.existingSecret .Values.database.url }}
{{- fail "\n\nSet either database.existingSecret or database.url, not both." }}
{{- end }}
{{- end }}

{{/*
auth.checkDisruptionBudget refuses a PodDisruptionBudget that blocks every
drain at the fewest replicas the release runs (replicaCount, or the HPA's
minReplicas): minAvailable that reaches all of them, as a number or as a
percentage (the disruption controller rounds a percentage of minAvailable
up), or maxUnavailable 0 / "0%".
*/}}
{{- define "auth.checkDisruptionBudget" -}}
{{- $pdb := .Values.podDisruptionBudget }}
{{- if $pdb.enabled }}
{{- $n := ternary .Values.autoscaling.minReplicas .Values.replicaCount .Values.autoscaling.enabled | int }}
{{- if not (kindIs "invalid" $pdb.maxUnavailable) }}
{{- if eq (toString $pdb.maxUnavailable | trimSuffix "%" | int) 0 }}
{{- fail (printf "\n\npodDisruptionBudget.maxUnavailable=%v lets no pod be evicted, so every node drain blocks: use at least 1 (or a percentage above 0%%)." $pdb.maxUnavailable) }}
{{- end }}
{{- else if kindIs "string" $pdb.minAvailable }}
{{- $pct := trimSuffix "%" $pdb.minAvailable | int }}
{{- $pods := div (add (mul $pct $n) 99) 100 }}
{{- if ge $pods $n }}
{{- fail (printf "\n\npodDisruptionBudget.minAvailable=%s of %d replicas rounds up to %d: no pod is evictable, so every node drain blocks. Lower it (at most %d%% with %d replicas), raise the replicas, or set podDisruptionBudget.maxUnavailable." $pdb.minAvailable $n $pods (div (mul (sub $n 1) 100) $n) $n) }}
{{- end }}
{{- else if ge (int $pdb.minAvailable) $n }}
{{- fail (printf "\n\npodDisruptionBudget.minAvailable=%d leaves no pod evictable with %d replicas: lower it, raise the replicas, or set podDisruptionBudget.maxUnavailable." (int $pdb.minAvailable) $n) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The database CA (database.caSecret): a Secret's CA bundle mounted read-only
and named by PGSSLROOTCERT, which pgx reads like libpq (an sslrootcert in
the URL wins over it). Used by the service and the migration Job.
*/}}
{{- define "auth.databaseCADir" -}}/etc/nova-auth/database-ca{{- end }}

{{- define "auth.databaseCAEnv" -}}
{{- if .Values.database.caSecret.name }}
- name: PGSSLROOTCERT
  value: {{ include "auth.databaseCADir" . }}/ca.crt
{{- end }}
{{- end }}

{{- define "auth.databaseCAVolume" -}}
{{- with .Values.database.caSecret.name }}
- name: database-ca
  secret:
    secretName: {{ . }}
    items:
      - key: {{ $.Values.database.caSecret.key }}
        path: ca.crt
{{- end }}
{{- end }}

{{- define "auth.databaseCAVolumeMount" -}}
{{- if .Values.database.caSecret.name }}
- name: database-ca
  mountPath: {{ include "auth.databaseCADir" . }}
  readOnly: true
{{- end }}
{{- end }}

{{/*
auth.volumes and auth.volumeMounts are the service pod's volumes and the
service container's mounts: the chart's own (add new ones here, so the pod
keeps one volumes list), then extraVolumes / extraVolumeMounts.
*/}}
{{- define "auth.volumes" -}}
{{- include "auth.databaseCAVolume" . }}
{{- include "auth.tlsVolume" . }}
{{- with .Values.extraVolumes }}
{{ tpl (toYaml .) $ }}
{{- end }}
{{- end }}

{{- define "auth.volumeMounts" -}}
{{- include "auth.databaseCAVolumeMount" . }}
{{- include "auth.tlsVolumeMount" . }}
{{- with .Values.extraVolumeMounts }}
{{ tpl (toYaml .) $ }}
{{- end }}
{{- end }}

{{/*
TLS (tls.*): the Secret mounted at auth.tlsDir, the user's or the one of the
Certificate the chart renders. A directory mount, not subPath: the kubelet
then swaps the files on renewal and the service re-reads them.
*/}}
{{- define "auth.tlsDir" -}}/etc/nova-auth/tls{{- end }}

{{- define "auth.tlsSecretName" -}}
{{- .Values.tls.existingSecret | default (include "auth.fullnameWith" (list . "tls")) }}
{{- end }}

{{- define "auth.tlsVolume" -}}
{{- if .Values.tls.enabled }}
- name: tls
  secret:
    secretName: {{ include "auth.tlsSecretName" . }}
{{- end }}
{{- end }}

{{- define "auth.tlsVolumeMount" -}}
{{- if .Values.tls.enabled }}
- name: tls
  mountPath: {{ include "auth.tlsDir" . }}
  readOnly: true
{{- end }}
{{- end }}

{{/*
auth.probe renders a probe from values; with TLS an httpGet probe asks over
HTTPS (the kubelet does not verify the certificate, and /health and
/readiness need no client certificate).
*/}}
{{- define "auth.probe" -}}
{{- $p := deepCopy (index . 1) }}
{{- if and (index . 0).Values.tls.enabled (hasKey $p "httpGet") }}
{{- $_ := set $p.httpGet "scheme" "HTTPS" }}
{{- end }}
{{- toYaml $p }}
{{- end }}

{{- define "auth.checkTLS" -}}
{{- $t := .Values.tls }}
{{- if and (not $t.enabled) (or $t.clientAuth $t.certManager.enabled $t.existingSecret) }}
{{- fail "\n\ntls.clientAuth, tls.certManager.enabled and tls.existingSecret take effect only with tls.enabled=true." }}
{{- end }}
{{- if and $t.enabled (not $t.existingSecret) (not $t.certManager.enabled) }}
{{- fail "\n\ntls.enabled needs a certificate: set tls.existingSecret (a Secret with tls.crt and tls.key) or tls.certManager.enabled=true with tls.certManager.issuerRef.name." }}
{{- end }}
{{- if and $t.existingSecret $t.certManager.enabled }}
{{- fail "\n\nSet either tls.existingSecret or tls.certManager.enabled, not both." }}
{{- end }}
{{- if and $t.certManager.enabled (not $t.certManager.issuerRef.name) }}
{{- fail "\n\ntls.certManager.enabled needs tls.certManager.issuerRef.name: the Issuer or ClusterIssuer that signs the certificate." }}
{{- end }}
{{- if and .Values.callerPolicy (not $t.clientAuth) }}
{{- fail "\n\ncallerPolicy names callers by their client certificates: it needs tls.enabled=true and tls.clientAuth=true." }}
{{- end }}
{{- end }}
