package kindcluster

import (
	"fmt"
	"os"

	"github.com/nova-auth/nova-auth/e2e/kindnode"
)

// machinePatches are what this machine needs beyond the user's kind config:
//   - containerd may not raise a container's oom_score_adj (no
//     CAP_SYS_RESOURCE in the bounding set, as on the host);
//   - kubeadm's etcd and CoreDNS tags are those built here (the local
//     cluster's pins), not its defaults.
//
// kind-config.yaml stays what a user with Docker runs.
var machinePatches = fmt.Sprintf(`
containerdConfigPatches:
- |-
  [plugins."io.containerd.grpc.v1.cri"]
    restrict_oom_score_adj = true
kubeadmConfigPatches:
- |
  kind: ClusterConfiguration
  etcd:
    local:
      imageTag: %q
  dns:
    imageTag: %q
`, kindnode.EtcdTag, kindnode.CoreDNSTag)

// CIConfig returns the kind config file with this machine's patches
// appended (the user's file sets neither key).
func CIConfig(file string) ([]byte, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return append(b, machinePatches...), nil
}
