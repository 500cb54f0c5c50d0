package localcluster

// The kind node image (e2e/kindnode) and the private Docker engine
// (e2e/dockerd) reuse these; they are thin exports of the local cluster's own.

// UnmountUnder detaches every mount point at or below dir, deepest first, and
// fails if some remain.
func UnmountUnder(dir string) error { return unmountUnder(dir) }

// CacheKey hashes the files (relative to dir), the Go version and extra into
// a short key for a cache folder's name.
func CacheKey(dir string, files []string, extra ...string) (string, error) {
	return cacheKey(dir, files, extra...)
}

// Cached runs build into a temporary folder and renames it to out, unless out
// exists; one build at a time per cacheDir. build must not call Cached or
// BuildComponents itself (the cache lock is not reentrant).
func Cached(cacheDir, out string, build func(tmp string) error) error {
	return cached(cacheDir, out, build)
}

// VersionLDFlags are the -ldflags that stamp KubernetesVersion into a
// Kubernetes binary.
func VersionLDFlags() string { return versionLDFlags() }
