package authimage

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// TestImage builds the image (or reads E2E_IMAGE, the tarball `make image`
// wrote), reads it back and runs the binary from it.
func TestImage(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	tag, err := AppVersion(root)
	if err != nil {
		t.Fatal(err)
	}
	path := os.Getenv("E2E_IMAGE")
	if path == "" {
		path = filepath.Join(t.TempDir(), "auth-service.tar")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		ref, err := Build(ctx, Options{RepoRoot: root, Out: path})
		if err != nil {
			t.Fatal(err)
		}
		if want := "ghcr.io/nova-auth/auth-service:" + tag; ref != want {
			t.Errorf("ref %q, want %q", ref, want)
		}
	}

	// The tarball's manifest names the chart's default image.
	want, _ := name.NewTag(Ref(tag))
	img, err := tarball.ImageFromPath(path, &want)
	if err != nil {
		t.Fatalf("the tarball has no image tagged %s: %v", want, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if c.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532", c.User)
	}
	if !reflect.DeepEqual(c.Entrypoint, []string{"/usr/local/bin/auth-service"}) || !reflect.DeepEqual(c.Cmd, []string{"serve"}) {
		t.Errorf("entrypoint %q cmd %q, want [/usr/local/bin/auth-service] [serve] (as the Dockerfile)", c.Entrypoint, c.Cmd)
	}
	if cf.OS != "linux" {
		t.Errorf("os %q", cf.OS)
	}
	for _, k := range []string{"title", "source", "version", "licenses", "revision"} {
		if c.Labels["org.opencontainers.image."+k] == "" {
			t.Errorf("label org.opencontainers.image.%s missing (labels %v)", k, c.Labels)
		}
	}
	if v := c.Labels["org.opencontainers.image.version"]; v != tag {
		t.Errorf("version label %q, want the chart's appVersion %q", v, tag)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("%d layers, want 1", len(layers))
	}

	// The Dockerfile and this image agree on entrypoint and user.
	df, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{`USER 65532:65532`, `ENTRYPOINT ["/usr/local/bin/auth-service"]`, `CMD ["serve"]`} {
		if !strings.Contains(string(df), line) {
			t.Errorf("Dockerfile lacks %s: the two images would differ", line)
		}
	}

	// The binary from the image runs (static: no loader, no libc).
	bin := filepath.Join(t.TempDir(), "auth-service")
	if err := ExtractFile(img, BinaryPath, bin); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("auth-service --version from the image: %v\n%s", err, out)
	}
	if !strings.HasPrefix(string(out), "auth-service ") {
		t.Errorf("--version printed %q", out)
	}
	if b, err := exec.Command("file", bin).Output(); err == nil && !strings.Contains(string(b), "statically linked") {
		t.Errorf("binary is not static: %s", b)
	}
	t.Logf("%s: %s", filepath.Base(path), strings.TrimSpace(string(out)))
}
