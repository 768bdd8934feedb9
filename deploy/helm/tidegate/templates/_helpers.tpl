{{/* Names and labels. */}}
{{- define "tidegate.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "tidegate.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "tidegate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "tidegate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tidegate
{{- end -}}

{{/* Selector labels of one component: call with (dict "root" $ "component" "worker"). */}}
{{- define "tidegate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tidegate.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "tidegate.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "tidegate.secretName" -}}
{{- default (printf "%s-secrets" (include "tidegate.fullname" .)) .Values.secrets.existingSecret -}}
{{- end -}}

{{- define "tidegate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (printf "%s-cluster-access" (include "tidegate.fullname" .)) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The connectors that read the secrets store (streams.secrets.SecretReader): webhook, and command only
when connectors.command.readSecretsStore is set: the programs it runs share its pod and could use the
account's token, so by default its programs get no token and only its TIDEGATE_SECRET_* variables. */}}
{{- define "tidegate.secretReaders" -}}
{{- if dig "command" "readSecretsStore" false .Values.connectors -}}
{{- toJson (list "command" "webhook") -}}
{{- else -}}
{{- toJson (list "webhook") -}}
{{- end -}}
{{- end -}}

{{/* "true" when some enabled connector reads the Kubernetes secrets store, so it needs its account. */}}
{{- define "tidegate.connectorsReadSecrets" -}}
{{- if eq .Values.secrets.store "kubernetes" -}}
{{- range $name := include "tidegate.secretReaders" . | fromJsonArray -}}
{{- if dig $name "enabled" false $.Values.connectors -}}true{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The account of the webhook and command connectors: get Secrets in the release namespace, nothing else. */}}
{{- define "tidegate.secretReaderAccount" -}}
{{- printf "%s-secret-reader" (include "tidegate.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The settings every Tidegate process shares (not secret): one source for the ConfigMap and the topics Job. */}}
{{- define "tidegate.settings" -}}
TIDEGATE_KAFKA_BOOTSTRAP: {{ required "kafka.bootstrap is required: set it to your Kafka's bootstrap servers, e.g. --set kafka.bootstrap=my-kafka-bootstrap.kafka:9092" .Values.kafka.bootstrap | quote }}
TIDEGATE_KAFKA_SECURITY_PROTOCOL: {{ .Values.kafka.securityProtocol | quote }}
{{- with .Values.kafka.saslMechanism }}
TIDEGATE_KAFKA_SASL_MECHANISM: {{ . | quote }}
{{- end }}
{{- with .Values.kafka.saslUsername }}
TIDEGATE_KAFKA_SASL_USERNAME: {{ . | quote }}
{{- end }}
TIDEGATE_TOPIC_PREFIX: {{ .Values.topics.prefix | quote }}
TIDEGATE_PARTITIONS: {{ .Values.topics.partitions | quote }}
TIDEGATE_REPLICATION_FACTOR: {{ .Values.topics.replicationFactor | quote }}
TIDEGATE_HOME: "/var/lib/tidegate"
TIDEGATE_DATA_DIR: "/var/lib/tidegate/faust"
{{- end -}}

{{/* Environment of a Tidegate container: the shared ConfigMap plus the secrets it may need. */}}
{{- define "tidegate.env" -}}
- name: TIDEGATE_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ include "tidegate.secretName" . }}, key: kafka-sasl-password, optional: true}
{{- end -}}

{{- define "tidegate.envFrom" -}}
- configMapRef:
    name: {{ include "tidegate.fullname" . }}-settings
{{- end -}}

{{/* Writable places under a read-only root filesystem: the home (Faust stores, helm's cache) and /tmp. */}}
{{- define "tidegate.volumes" -}}
- name: home
  emptyDir: {}
- name: tmp
  emptyDir: {}
{{- end -}}

{{- define "tidegate.volumeMounts" -}}
- name: home
  mountPath: /var/lib/tidegate
- name: tmp
  mountPath: /tmp
{{- end -}}

{{/* Scheduling of a component: its own values win over the chart-wide ones. */}}
{{- define "tidegate.scheduling" -}}
{{- $component := .component -}}
{{- with (default .root.Values.nodeSelector $component.nodeSelector) }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (default .root.Values.tolerations $component.tolerations) }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (default .root.Values.affinity $component.affinity) }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The init container that creates Tidegate's missing topics before a component starts. */}}
{{- define "tidegate.topicsInit" -}}
{{- if .Values.topics.create -}}
initContainers:
  - name: topics
    image: {{ include "tidegate.image" . }}
    imagePullPolicy: {{ .Values.image.pullPolicy }}
    args: ["topics", "create"]
    envFrom:
      {{- include "tidegate.envFrom" . | nindent 6 }}
    env:
      {{- include "tidegate.env" . | nindent 6 }}
    securityContext:
      {{- toYaml .Values.securityContext | nindent 6 }}
    resources:
      requests: {cpu: 50m, memory: 128Mi}
      limits: {memory: 256Mi}
    volumeMounts:
      {{- include "tidegate.volumeMounts" . | nindent 6 }}
{{- end }}
{{- end -}}

{{/* What helm releases of services contain (helm connector), and scaling (kubernetes connector). */}}
{{- define "tidegate.clusterAccessRules" -}}
# Helm keeps releases in Secrets; charts hold the usual workload objects.
- apiGroups: [""]
  resources: [secrets, configmaps, services, serviceaccounts, persistentvolumeclaims, pods, endpoints]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [apps]
  resources: [deployments, statefulsets, daemonsets, replicasets]
  verbs: [get, list, watch, create, update, patch, delete]
# The kubernetes connector scales through the scale subresource.
- apiGroups: [apps]
  resources: [deployments/scale, statefulsets/scale]
  verbs: [get, update, patch]
- apiGroups: [batch]
  resources: [jobs, cronjobs]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [networking.k8s.io]
  resources: [ingresses, networkpolicies]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch, create, update, patch, delete]
{{- if .Values.rbac.istio }}
# Blue/green traffic of the generated charts.
- apiGroups: [networking.istio.io]
  resources: [virtualservices, destinationrules]
  verbs: [get, list, watch, create, update, patch, delete]
{{- end }}
{{- end -}}
