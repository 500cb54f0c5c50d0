// Package authimage builds the auth-service image without Docker (`make
// image`): the static binary on an empty base, non-root, entrypoint
// auth-service, one layer, OCI labels; tagged with the chart's default
// repository and appVersion, written as a tarball that containerd
// (localcluster.LoadImage) and `kind load image-archive` accept. The root
// Dockerfile builds the same shape for those who use Docker.
package authimage

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/nova-auth/nova-auth/e2e/ociimage"
)

const (
	// Repository is the chart's default image.repository.
	Repository = "ghcr.io/nova-auth/auth-service"
	// BinaryPath is where the binary sits in the image (as in the Dockerfile).
	BinaryPath = "/usr/local/bin/auth-service"
	// User is the numeric user:group the image runs as, so that
	// runAsNonRoot can verify it without an /etc/passwd.
	User = "65532:65532"
	// Source is the repository URL in the OCI labels.
	Source = "https://github.com/nova-auth/nova-auth"
)

// Options says what Build builds.
type Options struct {
	// RepoRoot is the root of the nova-auth repository (the service module
	// and charts/auth).
	RepoRoot string
	// Binary is a static auth-service binary to put in the image. Empty:
	// Build compiles one (CGO_ENABLED=0) from RepoRoot.
	Binary string
	// Tag defaults to the chart's appVersion.
	Tag string
	// Version is what a compiled binary's --version prints; default Tag.
	Version string
	// Revision is the git commit for the revision label; empty: asked of git.
	Revision string
	// Out is the tarball to write.
	Out string
}

// Ref is the image reference Build tags the image with.
func Ref(tag string) string { return Repository + ":" + tag }

// AppVersion reads appVersion from charts/auth/Chart.yaml under repoRoot.
func AppVersion(repoRoot string) (string, error) {
	f, err := os.Open(filepath.Join(repoRoot, "charts", "auth", "Chart.yaml"))
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "appVersion:"); ok {
			return strings.Trim(strings.TrimSpace(v), `"'`), nil
		}
	}
	return "", errors.New("charts/auth/Chart.yaml has no appVersion")
}

// Build writes the image tarball at opts.Out and returns its reference.
func Build(ctx context.Context, opts Options) (string, error) {
	if opts.Tag == "" {
		v, err := AppVersion(opts.RepoRoot)
		if err != nil {
			return "", err
		}
		opts.Tag = v
	}
	if opts.Revision == "" {
		if b, err := exec.CommandContext(ctx, "git", "-C", opts.RepoRoot, "rev-parse", "HEAD").Output(); err == nil {
			opts.Revision = strings.TrimSpace(string(b))
		}
	}
	bin := opts.Binary
	if bin == "" {
		tmp, err := os.MkdirTemp("", "authimage-")
		if err != nil {
			return "", err
		}
		defer os.RemoveAll(tmp)
		bin = filepath.Join(tmp, "auth-service")
		if opts.Version == "" {
			opts.Version = opts.Tag
		}
		if err := goBuild(ctx, opts.RepoRoot, opts.Version, bin); err != nil {
			return "", err
		}
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	labels := map[string]string{
		"org.opencontainers.image.title":       "nova-auth auth-service",
		"org.opencontainers.image.description": "nova-auth: gRPC auth service on PostgreSQL",
		"org.opencontainers.image.source":      Source,
		"org.opencontainers.image.version":     opts.Tag,
		"org.opencontainers.image.licenses":    "Apache-2.0",
	}
	if opts.Revision != "" {
		labels["org.opencontainers.image.revision"] = opts.Revision
	}
	// No /tmp: the service writes nothing to disk (readOnlyRootFilesystem).
	img, err := ociimage.Build(ociimage.Config{
		Entrypoint: []string{BinaryPath},
		Cmd:        []string{"serve"},
		User:       User,
		Env:        []string{"PATH=/usr/local/bin"},
		Labels:     labels,
	}, ociimage.File{Path: BinaryPath, Mode: 0o755, Data: data})
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(opts.Out), 0o755); err != nil {
		return "", err
	}
	ref := Ref(opts.Tag)
	if err := ociimage.WriteTarball(opts.Out, ref, img); err != nil {
		return "", err
	}
	return ref, nil
}

// goBuild compiles the service as `make build` does, with version set.
func goBuild(ctx context.Context, repoRoot, version, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath",
		"-ldflags", "-s -w -X main.version="+version, "-o", out, "./service/cmd/auth-service")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build auth-service: %w\n%s", err, b)
	}
	return nil
}

// Open reads the image tarball back (the one image in it).
func Open(path string) (v1.Image, error) {
	return tarball.ImageFromPath(path, nil)
}

// ExtractFile copies the file at name (absolute, inside the image) from the
// image's layers to out, mode 0755: the tests run the very binary the
// cluster runs.
func ExtractFile(img v1.Image, name, out string) error {
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	want := strings.TrimPrefix(name, "/")
	// The last layer that has the file wins.
	for i := len(layers) - 1; i >= 0; i-- {
		rc, err := layers[i].Uncompressed()
		if err != nil {
			return err
		}
		found, err := copyFromTar(rc, want, out)
		rc.Close()
		if err != nil || found {
			return err
		}
	}
	return fmt.Errorf("%s is not in the image", name)
}

func copyFromTar(r io.Reader, want, out string) (bool, error) {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if strings.TrimPrefix(h.Name, "./") != want || h.Typeflag != tar.TypeReg {
			continue
		}
		f, err := os.OpenFile(out, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
		if err != nil {
			return false, err
		}
		if _, err := io.Copy(f, tr); err != nil {
			f.Close()
			return false, err
		}
		return true, f.Close()
	}
}
