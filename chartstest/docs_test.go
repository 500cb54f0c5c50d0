package chartstest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// helmDocsArgs are the flags `make chart-docs` uses too. (helm-docs' own
// strict mode wants a comment on every map and every leaf below a documented
// map; TestValuesDocumented checks what matters: every row has a description.)
var helmDocsArgs = []string{
	"--chart-search-root", "../charts",
	"--chart-to-generate", "../charts/auth",
	"--template-files", "README.md.gotmpl",
	"--sort-values-order", "file",
	"--skip-version-footer",
	"--log-level", "warning",
}

// TestReadmeUpToDate regenerates charts/auth/README.md with helm-docs (the
// version pinned in tools/go.mod) and fails when the committed one differs;
// `go test -run TestReadmeUpToDate -update` rewrites it.
func TestReadmeUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds helm-docs from tools/ (make test runs it without -short)")
	}
	bin := tool(t, "../tools", "github.com/norwoodj/helm-docs/cmd/helm-docs")
	readme := filepath.Join(chartDir, "README.md")
	if *update {
		out, err := exec.Command(bin, helmDocsArgs...).CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Fatalf("helm-docs: %v\n%s", err, out)
		}
		return
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, append([]string{"--dry-run"}, helmDocsArgs...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm-docs: %v\n%s", err, stderr.String())
	}
	if stderr.Len() > 0 {
		t.Errorf("helm-docs complained:\n%s", stderr.String())
	}
	undocumented(t, stdout.String())
	want, err := os.ReadFile(readme)
	if err != nil {
		t.Fatalf("%v (run `make chart-docs`)", err)
	}
	if !bytes.Equal(bytes.TrimSpace(want), bytes.TrimSpace(stdout.Bytes())) {
		t.Errorf("%s is out of date: run `make chart-docs` and commit it\n%s", readme, diff(string(want), stdout.String()))
	}
}

// undocumented fails for each row of the values table without a description:
// a value added without its `# --` comment.
func undocumented(t *testing.T, readme string) {
	t.Helper()
	_, table, ok := strings.Cut(readme, "\n## Values\n")
	if !ok {
		t.Fatal("the README has no Values section")
	}
	rows := 0
	for _, line := range strings.Split(table, "\n") {
		if !strings.HasPrefix(line, "| ") || strings.HasPrefix(line, "| Key ") {
			continue
		}
		rows++
		cells := strings.Split(strings.TrimSuffix(line, "|"), " | ")
		if strings.TrimSpace(cells[len(cells)-1]) == "" {
			t.Errorf("value %s has no `# --` comment in values.yaml", strings.TrimPrefix(cells[0], "| "))
		}
	}
	if rows < 50 {
		t.Errorf("only %d rows in the values table", rows)
	}
}
