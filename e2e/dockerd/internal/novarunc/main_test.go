package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestRewriteSpec(t *testing.T) {
	allowed := map[string]bool{"CAP_CHOWN": true, "CAP_SYS_ADMIN": true}
	all := `["CAP_CHOWN","CAP_SYS_ADMIN","CAP_SYS_RESOURCE","CAP_FUTURE_THING"]`
	want := []any{"CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_FUTURE_THING"}
	config := `{"ociVersion":"1.0.2","process":{"capabilities":{"bounding":` + all + `,"effective":` + all +
		`,"permitted":` + all + `}},"linux":{"resources":{"memory":{"limit":9223372036854771712}}}}`
	process := `{"args":["sh"],"capabilities":{"bounding":` + all + `,"effective":` + all + `,"ambient":[]}}`

	tests := []struct {
		name    string
		file    string // written into the bundle folder
		content string
		args    func(dir string) []string
		inConf  bool
		changed bool
		wantErr string
	}{
		{name: "create with shim flags", file: "config.json", content: config, inConf: true, changed: true,
			args: func(d string) []string {
				return []string{"--root", "/r", "--log", "/l", "--log-format", "json", "--systemd-cgroup", "create", "--bundle", d, "--pid-file", "p", "id"}
			}},
		{name: "run with -b", file: "config.json", content: config, inConf: true, changed: true,
			args: func(d string) []string { return []string{"run", "-b", d, "id"} }},
		{name: "create with --bundle=", file: "config.json", content: config, inConf: true, changed: true,
			args: func(d string) []string { return []string{"create", "--bundle=" + d, "id"} }},
		{name: "exec --process", file: "process.json", content: process, changed: true,
			args: func(d string) []string {
				return []string{"--root", "/r", "exec", "--process", filepath.Join(d, "process.json"), "--detach", "id"}
			}},
		{name: "exec without a process file", file: "process.json", content: process,
			args: func(d string) []string { return []string{"exec", "id", "sh"} }},
		{name: "state is passed through", file: "config.json", content: config,
			args: func(d string) []string { return []string{"--root", "/r", "state", "id"} }},
		{name: "version", file: "config.json", content: config,
			args: func(d string) []string { return []string{"--version"} }},
		{name: "nothing to remove", file: "config.json", content: `{"process":{"capabilities":{"bounding":["CAP_CHOWN"]}}}`,
			args: func(d string) []string { return []string{"create", "--bundle", d, "id"} }},
		{name: "no capabilities", file: "config.json", content: `{"process":{"args":["sh"]}}`,
			args: func(d string) []string { return []string{"create", "--bundle", d, "id"} }},
		{name: "bad json", file: "config.json", content: `{"process":`, wantErr: "unexpected EOF",
			args: func(d string) []string { return []string{"create", "--bundle", d, "id"} }},
		{name: "missing bundle", file: "x", content: "", wantErr: "no such file",
			args: func(d string) []string { return []string{"create", "--bundle", filepath.Join(d, "nope"), "id"} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, tc.file)
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			err := rewriteSpec(tc.args(dir), allowed)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(path)
			if !tc.changed {
				if string(b) != tc.content {
					t.Fatalf("file changed:\n%s", b)
				}
				return
			}
			if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
				t.Errorf("mode = %v, want 0600", fi.Mode().Perm())
			}
			if !strings.Contains(string(b), "9223372036854771712") && tc.inConf {
				t.Errorf("a large number lost its precision:\n%s", b)
			}
			var doc map[string]any
			if err := json.Unmarshal(b, &doc); err != nil {
				t.Fatal(err)
			}
			proc := doc
			if tc.inConf {
				proc = doc["process"].(map[string]any)
			}
			for set, v := range proc["capabilities"].(map[string]any) {
				if set == "ambient" {
					if len(v.([]any)) != 0 {
						t.Errorf("ambient = %v", v)
					}
					continue
				}
				if !reflect.DeepEqual(v, want) {
					t.Errorf("%s = %v, want %v", set, v, want)
				}
			}
		})
	}
}

func TestBoundingSetReadsThisProcess(t *testing.T) {
	got := boundingSet()
	if !got["CAP_CHOWN"] && os.Geteuid() == 0 {
		t.Fatalf("root without CAP_CHOWN in its bounding set? %v", got)
	}
}
