package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKeysGenerateOutDir: keys generate --out-dir creates private.pem 0600
// and public.pem 0644, refuses to replace existing keys, and with --force
// replaces them with the right mode even when the old private.pem was 0644.
func TestKeysGenerateOutDir(t *testing.T) {
	const old = "old key\n"
	tests := []struct {
		name     string
		existing map[string]fs.FileMode // files present before, with their mode
		symlink  bool                   // private.pem is a symlink to a file elsewhere
		args     []string               // after "keys generate"
		code     int
		stderr   string
		replaced bool // both files hold a new key pair afterwards
	}{
		{name: "empty dir", args: []string{"--out-dir", "{dir}"}, replaced: true},
		{name: "dir made", args: []string{"--out-dir", "{dir}/sub"}, replaced: true},
		{name: "private exists 0644", existing: map[string]fs.FileMode{"private.pem": 0o644},
			args: []string{"--out-dir", "{dir}"}, code: 1, stderr: "pass --force"},
		{name: "public exists", existing: map[string]fs.FileMode{"public.pem": 0o644},
			args: []string{"--out-dir", "{dir}"}, code: 1, stderr: "already exists"},
		{name: "private is a symlink", symlink: true,
			args: []string{"--out-dir", "{dir}"}, code: 1, stderr: "already exists"},
		{name: "force replaces 0644 private", existing: map[string]fs.FileMode{"private.pem": 0o644, "public.pem": 0o600},
			args: []string{"--out-dir", "{dir}", "--force"}, replaced: true},
		{name: "force on empty dir", args: []string{"--force", "--out-dir", "{dir}"}, replaced: true},
		{name: "force without out-dir", args: []string{"--force"}, code: 2, stderr: "--force only applies with --out-dir"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, mode := range tt.existing {
				p := filepath.Join(dir, name)
				if err := os.WriteFile(p, []byte(old), mode); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(p, mode); err != nil {
					t.Fatal(err)
				}
			}
			target := filepath.Join(t.TempDir(), "target")
			if tt.symlink {
				if err := os.WriteFile(target, []byte(old), 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(target, filepath.Join(dir, "private.pem")); err != nil {
					t.Fatal(err)
				}
			}
			args := []string{"keys", "generate"}
			out := dir
			for _, a := range tt.args {
				if strings.HasPrefix(a, "{dir}") {
					a = dir + strings.TrimPrefix(a, "{dir}")
					out = a
				}
				args = append(args, a)
			}
			stdout, stderr, code := cli(t, nil, "", args...)
			if code != tt.code || !strings.Contains(stderr, tt.stderr) {
				t.Fatalf("exit %d, stderr %q; want exit %d with %q", code, stderr, tt.code, tt.stderr)
			}
			if tt.code == 0 && stdout != "" {
				t.Errorf("stdout %q; want nothing with --out-dir", stdout)
			}
			if tt.symlink {
				if b, _ := os.ReadFile(target); string(b) != old {
					t.Errorf("symlink target rewritten: %q", b)
				}
			}
			for name, mode := range map[string]fs.FileMode{"private.pem": 0o600, "public.pem": 0o644} {
				p := filepath.Join(out, name)
				b, err := os.ReadFile(p)
				if !tt.replaced {
					if _, had := tt.existing[name]; had && string(b) != old {
						t.Errorf("%s was replaced without --force", name)
					}
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(string(b), "-----BEGIN ") {
					t.Errorf("%s holds %q; want a new PEM key", name, b)
				}
				fi, err := os.Lstat(p)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode() != mode {
					t.Errorf("%s has mode %v; want %v", name, fi.Mode(), mode)
				}
			}
			if tt.code != 0 {
				// A refusal writes neither file of the pair.
				for _, name := range []string{"private.pem", "public.pem"} {
					if _, had := tt.existing[name]; had || (tt.symlink && name == "private.pem") {
						continue
					}
					if _, err := os.Lstat(filepath.Join(out, name)); err == nil {
						t.Errorf("%s written although the command refused", name)
					}
				}
			}
			entries, _ := os.ReadDir(out)
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), ".") {
					t.Errorf("temporary file %s left behind", e.Name())
				}
			}
		})
	}
}
