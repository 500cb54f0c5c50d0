package devstack

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/nova-auth/nova-auth/internal/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.RemoveBinary()
	os.Exit(code)
}

// TestStartInTempDir: the stack comes up in a temporary folder (also as
// root), every demo artefact works, and Stop removes the folder.
func TestStartInTempDir(t *testing.T) {
	bin, err := testenv.Binary()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := Start(ctx, Options{Bin: bin})
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Run(ctx, nil, "healthcheck", "--addr", s.GRPCAddr)
	if err != nil || !strings.Contains(out, "SERVING") {
		t.Fatalf("healthcheck: %q %v", out, err)
	}
	if len(strings.Split(s.Token, ".")) != 3 || len(s.UserID) != 36 {
		t.Fatalf("demo token %q, user %q", s.Token, s.UserID)
	}
	dir := s.dir
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("temp folder left behind: %v", err)
	}
}
