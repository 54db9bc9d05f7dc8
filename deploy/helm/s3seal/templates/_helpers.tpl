{{/* Names and labels. */}}
{{- define "s3seal.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "s3seal.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "s3seal.labels" -}}
{{ include "s3seal.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "s3seal.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "s3seal.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "s3seal.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The ConfigMap holding s3seal.yaml. */}}
{{- define "s3seal.configMapName" -}}
{{- if eq .Values.mode "sidecar" -}}
{{- printf "%s-s3seal" .Values.sidecar.workload | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- include "s3seal.fullname" . -}}
{{- end -}}
{{- end -}}

{{/* keys: the key spec for the chosen provider. */}}
{{- define "s3seal.keys" -}}
{{- $k := .Values.keys -}}
{{- if eq $k.provider "aws-kms" -}}
{{- if not $k.awsKms.keyIds -}}{{- fail "keys.awsKms.keyIds: name at least one KMS key" -}}{{- end -}}
aws-kms:{{ join "," $k.awsKms.keyIds }}
{{- else if eq $k.provider "local" -}}
{{- if not $k.local.existingSecret -}}{{- fail "keys.local.existingSecret: name the Secret holding the key ring (kubectl create secret generic NAME --from-file=keyring)" -}}{{- end -}}
local:env:S3SEAL_KEYRING
{{- else if has $k.provider (list "kmip" "pkcs11" "age") -}}
{{- fail (printf "keys.provider %s: reserved for a key provider being added to s3seal; this chart version supports aws-kms and local" $k.provider) -}}
{{- else -}}
{{- fail (printf "keys.provider %q: want aws-kms or local" $k.provider) -}}
{{- end -}}
{{- end -}}

{{/* s3seal.yaml: what is the same for every replica. Listeners, TLS mode
and certificate storage come from the container's environment. */}}
{{- define "s3seal.configFile" -}}
{{- $c := .Values.config -}}
{{- $up := dict "region" $c.upstream.region "checksum" $c.upstream.checksum -}}
{{- with $c.upstream.endpoint }}{{ $_ := set $up "endpoint" . }}{{ end -}}
{{- $tls := dict "min_version" (toString .Values.tls.minVersion) -}}
{{- if eq .Values.tls.mode "acme" -}}
{{- $acme := dict "challenges" .Values.tls.acme.challenges -}}
{{- with .Values.tls.acme.ca }}{{ $_ := set $acme "ca" . }}{{ end -}}
{{- $_ := set $tls "acme" $acme -}}
{{- end -}}
{{- $file := dict "mode" $c.mode "upstream" $up "tls" $tls "log" $c.log "limits" (dict "shutdown_timeout" $c.limits.shutdownTimeout) -}}
{{- if $c.policies }}{{ $_ := set $file "policies" $c.policies }}{{ end -}}
{{- $_ := set $file "keys" (include "s3seal.keys" .) -}}
{{- toYaml (mergeOverwrite $file $c.extra) -}}
{{- end -}}

{{/* The s3seal container's environment. */}}
{{- define "s3seal.env" -}}
{{- $sidecar := eq .Values.mode "sidecar" -}}
- name: S3SEAL_LISTEN
  value: {{ ternary .Values.sidecar.listen "0.0.0.0:8443" $sidecar | quote }}
# Every interface: the kubelet probes and Prometheus scrapes from outside
# the pod. Port 9180 serves only health, readiness and metrics.
- name: S3SEAL_ADMIN_LISTEN
  value: 0.0.0.0:9180
- name: S3SEAL_TLS
  value: {{ .Values.tls.mode | quote }}
{{- if eq .Values.tls.mode "acme" }}
- name: S3SEAL_ACME_DOMAINS
  value: {{ join "," .Values.tls.acme.domains | quote }}
- name: S3SEAL_ACME_EMAIL
  value: {{ .Values.tls.acme.email | quote }}
- name: S3SEAL_CERT_STORAGE
  value: {{ .Values.tls.acme.storage | quote }}
{{- else if eq .Values.tls.mode "files" }}
- name: S3SEAL_TLS_CERT
  value: /etc/s3seal/tls/tls.crt
- name: S3SEAL_TLS_KEY
  value: /etc/s3seal/tls/tls.key
{{- end }}
{{- if and $sidecar .Values.sidecar.trustLoopback }}
- name: S3SEAL_SIDECAR_TRUST_LOOPBACK
  value: "true"
{{- end }}
{{- with .Values.clients.existingSecret }}
- name: S3SEAL_CLIENT_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: access-key-id
- name: S3SEAL_CLIENT_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: secret-access-key
{{- end }}
{{- with .Values.upstreamCredentials.existingSecret }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: access-key-id
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: secret-access-key
{{- end }}
{{- if eq .Values.keys.provider "local" }}
- name: S3SEAL_KEYRING
  valueFrom:
    secretKeyRef:
      name: {{ .Values.keys.local.existingSecret }}
      key: {{ .Values.keys.local.secretKey }}
{{- end }}
- name: GOMEMLIMIT
  valueFrom:
    resourceFieldRef:
      containerName: s3seal
      resource: limits.memory
{{- end -}}

{{/* The s3seal container, for the Deployment and for sidecars. */}}
{{- define "s3seal.containerSpec" -}}
{{- $sidecar := eq .Values.mode "sidecar" -}}
name: s3seal
image: {{ include "s3seal.image" . }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
{{- if $sidecar }}
# A native sidecar: started (and probed) before the application, stopped
# after it.
restartPolicy: Always
{{- end }}
args: ["serve", "--config", "/etc/s3seal/s3seal.yaml"]
env:
{{- include "s3seal.env" . | nindent 2 }}
ports:
{{- if not $sidecar }}
  - name: s3
    containerPort: 8443
    protocol: TCP
{{- end }}
  - name: admin
    containerPort: 9180
    protocol: TCP
startupProbe:
  httpGet:
    path: /healthz
    port: admin
  periodSeconds: {{ ternary 1 2 $sidecar }}
  failureThreshold: 30
livenessProbe:
  httpGet:
    path: /healthz
    port: admin
  periodSeconds: 10
  timeoutSeconds: 3
readinessProbe:
  httpGet:
    path: /readyz
    port: admin
  periodSeconds: 5
  timeoutSeconds: 3
{{- if and (not $sidecar) .Values.preStopSleepSeconds }}
lifecycle:
  preStop:
    sleep:
      seconds: {{ .Values.preStopSleepSeconds }}
{{- end }}
resources:
  {{- toYaml (ternary .Values.sidecar.resources .Values.resources $sidecar) | nindent 2 }}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  runAsNonRoot: true
  runAsUser: 65532
  runAsGroup: 65532
  capabilities:
    drop: ["ALL"]
  seccompProfile:
    type: RuntimeDefault
volumeMounts:
  - name: s3seal-config
    mountPath: /etc/s3seal
    readOnly: true
  - name: s3seal-data
    mountPath: /var/lib/s3seal
{{- if eq .Values.tls.mode "files" }}
  - name: s3seal-tls
    mountPath: /etc/s3seal/tls
    readOnly: true
{{- end }}
{{- end -}}

{{- define "s3seal.volumeList" -}}
- name: s3seal-config
  configMap:
    name: {{ include "s3seal.configMapName" . }}
- name: s3seal-data
  emptyDir:
    sizeLimit: 64Mi
{{- if eq .Values.tls.mode "files" }}
- name: s3seal-tls
  secret:
    secretName: {{ required "tls.files.existingSecret: name the kubernetes.io/tls Secret" .Values.tls.files.existingSecret }}
{{- end }}
{{- end -}}

{{/*
For a parent chart's pod template (mode: sidecar):

  initContainers:
    {{- include "s3seal.sidecar.container" (index .Subcharts "s3seal") | nindent 4 }}
  volumes:
    {{- include "s3seal.sidecar.volumes" (index .Subcharts "s3seal") | nindent 4 }}
*/}}
{{- define "s3seal.sidecar.container" -}}
- {{ include "s3seal.containerSpec" . | nindent 2 | trim }}
{{- end -}}

{{- define "s3seal.sidecar.volumes" -}}
{{ include "s3seal.volumeList" . }}
{{- end -}}

{{/* Checks that hold for every mode. */}}
{{- define "s3seal.validate" -}}
{{- if and (eq .Values.tls.mode "off") (ne .Values.mode "sidecar") -}}
{{- fail "tls.mode off is for sidecars on the pod's loopback; a scaled s3seal serves TLS (acme, files or self-signed)" -}}
{{- end -}}
{{- if and (eq .Values.mode "sidecar") (not .Values.clients.existingSecret) (not .Values.sidecar.trustLoopback) -}}
{{- fail "sidecar: set clients.existingSecret (the identity the application signs with) or sidecar.trustLoopback" -}}
{{- end -}}
{{- if and (ne .Values.mode "sidecar") (not .Values.clients.existingSecret) -}}
{{- fail "clients.existingSecret: name the Secret with the client identity (keys access-key-id, secret-access-key)" -}}
{{- end -}}
{{- $grace := int .Values.terminationGracePeriodSeconds -}}
{{- $shutdown := int (trimSuffix "s" (toString .Values.config.limits.shutdownTimeout)) -}}
{{- if le $grace (add $shutdown (int .Values.preStopSleepSeconds)) -}}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed config.limits.shutdownTimeout (%ds) plus preStopSleepSeconds (%d)" $grace $shutdown (int .Values.preStopSleepSeconds)) -}}
{{- end -}}
{{- end -}}
