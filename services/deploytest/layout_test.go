package deploytest

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestDomainImportsNoNATS pins the split of services/internal: the domain
// packages (services/internal/domain/...) must not depend on NATS, directly
// or through another package; the NATS client and server belong to
// services/internal/transport and the services.
func TestDomainImportsNoNATS(t *testing.T) {
	t.Parallel()
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Deps " "}}`, "./services/internal/domain/...")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 7 {
		t.Fatalf("go list found %d domain packages, want at least 7:\n%s", len(lines), out)
	}
	for _, line := range lines {
		pkg, deps, _ := strings.Cut(line, " ")
		for _, d := range strings.Fields(deps) {
			if strings.HasPrefix(d, "github.com/nats-io/") {
				t.Errorf("%s depends on %s; domain packages stay free of NATS (go list -deps %s)", pkg, d, pkg)
				break
			}
		}
	}
}

// TestPkgIsThePublicAPI pins what pkg/ holds: the packages other programs
// import (webhook signature verification and the HTTP client), nothing
// else. Everything private lives under services/internal, and nats/ keeps
// only the server configs (their tests are this package).
func TestPkgIsThePublicAPI(t *testing.T) {
	t.Parallel()
	entries, err := os.ReadDir(filepath.Join(root, "pkg"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if want := []string{"client", "webhook"}; !slices.Equal(got, want) {
		t.Errorf("pkg/ holds %v, want exactly %v; private packages go under services/internal", got, want)
	}
	goFiles, err := filepath.Glob(filepath.Join(natsDir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	if len(goFiles) > 0 {
		t.Errorf("nats/ holds Go files %v; the deployment's tests live in services/deploytest", goFiles)
	}
}
