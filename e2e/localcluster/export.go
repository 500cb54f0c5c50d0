package localcluster

// UnmountUnder detaches every mount point at or below dir, deepest first, and
// fails if some remain. The private Docker engine (e2e/dockerd) cleans its
// folders with it.
func UnmountUnder(dir string) error { return unmountUnder(dir) }
