package kindnode

// KubeBridgeMAC is kube-bridge's MAC address on every node: each node's
// bridge is its own L2 segment (kube-router routes between nodes), so one
// locally administered address serves them all.
const KubeBridgeMAC = "02:6b:62:72:00:01"

// cniManifest is /kind/manifests/default-cni.yaml: kind applies it on the
// control plane before the workers join, as it applies kindnet in its own
// image. kube-router (after its daemonset/kubeadm-kuberouter.yaml) routes pod
// traffic between nodes over iBGP on the nodes' network, writes the bridge CNI
// config with the node's pod CIDR, and enforces NetworkPolicy with iptables
// and ipsets; kube-proxy stays the service proxy. A denied connection is
// REJECTed (refused at once), not dropped.
const cniManifest = `apiVersion: v1
kind: ServiceAccount
metadata:
  name: kube-router
  namespace: kube-system
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: kube-router
rules:
- apiGroups: [""]
  resources: [namespaces, pods, services, nodes, endpoints]
  verbs: [get, list, watch]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [get, list, watch]
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [get, create, update]
- apiGroups: [""]
  resources: [services/status]
  verbs: [update]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: kube-router
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: kube-router
subjects:
- kind: ServiceAccount
  name: kube-router
  namespace: kube-system
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: kube-router-cfg
  namespace: kube-system
data:
  cni-conf.json: |
    {"cniVersion": "0.3.1", "name": "kubernetes", "plugins": [
      {"type": "bridge", "bridge": "kube-bridge", "isDefaultGateway": true, "hairpinMode": true, "ipam": {"type": "host-local"}},
      {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}]}
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: kube-router
  namespace: kube-system
  labels: {k8s-app: kube-router}
spec:
  selector:
    matchLabels: {k8s-app: kube-router}
  template:
    metadata:
      labels: {k8s-app: kube-router}
    spec:
      serviceAccountName: kube-router
      hostNetwork: true
      priorityClassName: system-node-critical
      tolerations:
      - operator: Exists
      initContainers:
      - name: install-cni
        image: ` + CNIImage + `
        imagePullPolicy: IfNotPresent
        # kube-bridge gets a MAC address of its own before kube-router uses
        # it: a Linux bridge without one takes its lowest port's MAC and
        # moves it when that pod ends, and the node's other pods keep sending
        # to the old gateway MAC (DNS, Services, the database on the host)
        # until their ARP entries expire, tens of seconds later.
        command: [/bin/sh, -c, "cp /etc/kube-router/cni-conf.json /etc/cni/net.d/.10-kuberouter.tmp && mv /etc/cni/net.d/.10-kuberouter.tmp /etc/cni/net.d/10-kuberouter.conflist && { ip link show kube-bridge >/dev/null 2>&1 || ip link add kube-bridge type bridge; } && ip link set kube-bridge address ` + KubeBridgeMAC + `"]
        securityContext:
          capabilities: {add: [NET_ADMIN]}
        volumeMounts:
        - {name: cni-conf-dir, mountPath: /etc/cni/net.d}
        - {name: kube-router-cfg, mountPath: /etc/kube-router}
      containers:
      - name: kube-router
        image: ` + CNIImage + `
        imagePullPolicy: IfNotPresent
        args: [--run-router=true, --run-firewall=true, --run-service-proxy=false, --enable-overlay=false,
               --enable-pod-egress=true, --enable-cni=true, --health-port=20244, --bgp-graceful-restart=false]
        env:
        - name: NODE_NAME
          valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
        - {name: KUBE_ROUTER_CNI_CONF_FILE, value: /etc/cni/net.d/10-kuberouter.conflist}
        livenessProbe:
          httpGet: {path: /healthz, port: 20244}
          initialDelaySeconds: 10
          periodSeconds: 3
        resources:
          requests: {cpu: 50m, memory: 64Mi}
        securityContext:
          privileged: true
        volumeMounts:
        - {name: lib-modules, mountPath: /lib/modules, readOnly: true}
        - {name: cni-conf-dir, mountPath: /etc/cni/net.d}
        - {name: xtables-lock, mountPath: /run/xtables.lock}
      volumes:
      - name: lib-modules
        hostPath: {path: /lib/modules}
      - name: cni-conf-dir
        hostPath: {path: /etc/cni/net.d}
      - name: kube-router-cfg
        configMap: {name: kube-router-cfg}
      - name: xtables-lock
        hostPath: {path: /run/xtables.lock, type: FileOrCreate}
`

// storageManifest is /kind/manifests/default-storage.yaml: the in-tree
// host-path provisioner kind's kubeadm config already enables, as the default
// StorageClass (kind falls back to the same when the file is missing, with a
// warning).
const storageManifest = `apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: kubernetes.io/host-path
`
