package deploytest

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// root is the repository's top level and natsDir the directory of the NATS
// server configs that compose.yaml mounts; the tests run in this package's
// directory, services/deploytest.
const root = "../.."

var natsDir = filepath.Join(root, "nats")

// natsFile is the path of a config file in nats/.
func natsFile(name string) string { return filepath.Join(natsDir, name) }

func loadCompose(t testing.TB) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "compose.yaml")},
		cli.WithWorkingDirectory(root),
		cli.WithEnv(nil), // the documented defaults, not the caller's shell
		cli.WithProfiles([]string{"cluster"}),
	)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("load compose.yaml: %v", err)
	}
	return p
}

var envName = regexp.MustCompile(`^(HERALD|NATS|OTEL)_[A-Z0-9_]+$`)

// envNamesIn collects the environment variable names that the non-test Go
// sources under dir mention as string literals: getenv("X") calls and the
// name tables some ConfigFromEnv functions range over. Deriving the list
// from the code keeps compose.yaml honest when a setting is renamed.
func envNamesIn(t testing.TB, dir string) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil && envName.MatchString(s) {
					names[s] = true
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

var heraldServices = map[string]string{ // service -> host port
	"collector": "8081", "registry": "8082", "dispatcher": "8083", "audit": "8084", "engine": "8085",
}

func TestComposeServices(t *testing.T) {
	t.Parallel()
	p := loadCompose(t)
	common := map[string]bool{}
	for _, dir := range []string{"services/internal/service", "services/internal/transport/bus", "services/internal/telemetry"} {
		for n := range envNamesIn(t, dir) {
			common[n] = true
		}
	}
	for _, must := range []string{"NATS_URL", "NATS_USER", "NATS_PASSWORD", "HERALD_HTTP_ADDR", "HERALD_ADMIN_TOKEN", "OTEL_EXPORTER_OTLP_ENDPOINT"} {
		if !common[must] {
			t.Errorf("no source in services/internal/service, services/internal/transport/bus or services/internal/telemetry reads %s", must)
		}
	}
	accounts, err := os.ReadFile(natsFile("accounts.conf"))
	if err != nil {
		t.Fatal(err)
	}

	for name, hostPort := range heraldServices {
		svc, ok := p.Services[name]
		if !ok {
			t.Errorf("compose.yaml has no service %s", name)
			continue
		}
		// Build: the repo's Dockerfile with SERVICE=<name>, whose binary exists.
		if svc.Build == nil {
			t.Errorf("%s: no build section", name)
		} else {
			if _, err := os.Stat(filepath.Join(svc.Build.Context, svc.Build.Dockerfile)); err != nil {
				t.Errorf("%s: Dockerfile: %v", name, err)
			}
			if arg := svc.Build.Args["SERVICE"]; arg == nil || *arg != name {
				t.Errorf("%s: build arg SERVICE = %q, want %s", name, str(arg), name)
			}
			if _, err := os.Stat(filepath.Join(root, "services", name, "cmd", "herald-"+name, "main.go")); err != nil {
				t.Errorf("%s: binary the Dockerfile builds: %v", name, err)
			}
		}
		// Environment: only names the service's code reads.
		known := envNamesIn(t, filepath.Join("services", name))
		for k := range common {
			known[k] = true
		}
		for k, v := range svc.Environment {
			if !known[k] {
				t.Errorf("%s: environment %s is read by no code of the service", name, k)
			}
			if v == nil || *v == "" {
				t.Errorf("%s: environment %s is empty", name, k)
			}
		}
		// NATS user: the service's own, defined in accounts.conf.
		if u := svc.Environment["NATS_USER"]; u == nil || *u != name {
			t.Errorf("%s: NATS_USER = %q, want %s", name, str(u), name)
		} else if !strings.Contains(string(accounts), "user: "+name+", password: $"+strings.ToUpper(name)+"_PASSWORD") {
			t.Errorf("%s: accounts.conf has no user %s with $%s_PASSWORD", name, name, strings.ToUpper(name))
		} else if pw := svc.Environment["NATS_PASSWORD"]; pw == nil || *pw != password(name) {
			t.Errorf("%s: NATS_PASSWORD default does not match the nats container's", name)
		} else if np := p.Services["nats"].Environment[strings.ToUpper(name)+"_PASSWORD"]; np == nil || *np != *pw {
			t.Errorf("%s: nats container's %s_PASSWORD default differs", name, strings.ToUpper(name))
		}
		// Health: /healthz, and NATS healthy first.
		if svc.HealthCheck == nil || !strings.Contains(strings.Join(svc.HealthCheck.Test, " "), "/healthz") {
			t.Errorf("%s: no /healthz health check", name)
		}
		if d, ok := svc.DependsOn["nats"]; !ok || d.Condition != types.ServiceConditionHealthy {
			t.Errorf("%s: must depend on nats being healthy", name)
		}
		if len(svc.Ports) != 1 || svc.Ports[0].Published != hostPort || svc.Ports[0].Target != 8080 {
			t.Errorf("%s: ports %+v, want %s:8080", name, svc.Ports, hostPort)
		}
	}
}

func TestComposePortsDoNotCollide(t *testing.T) {
	t.Parallel()
	p := loadCompose(t)
	seen := map[string]string{}
	for name, svc := range p.Services {
		for _, port := range svc.Ports {
			key := port.HostIP + ":" + port.Published + "/" + port.Protocol
			if other, ok := seen[key]; ok {
				t.Errorf("host port %s used by %s and %s", key, other, name)
			}
			seen[key] = name
		}
	}
	if len(seen) < 10 {
		t.Errorf("only %d host ports published; did the loader drop services?", len(seen))
	}
}

func TestComposeNATS(t *testing.T) {
	t.Parallel()
	p := loadCompose(t)
	check := func(name, conf string) {
		svc, ok := p.Services[name]
		if !ok {
			t.Errorf("no service %s", name)
			return
		}
		if !strings.HasPrefix(svc.Image, "nats:2.") {
			t.Errorf("%s: image %s, want the official nats:2.x", name, svc.Image)
		}
		if !slices.Contains(svc.Command, "/etc/nats/"+conf) {
			t.Errorf("%s: command %v does not use %s", name, svc.Command, conf)
		}
		var data, confs bool
		for _, v := range svc.Volumes {
			if v.Type == types.VolumeTypeVolume && v.Target == "/data" {
				data = true
			}
			if v.Type == types.VolumeTypeBind && v.Target == "/etc/nats" {
				if _, err := os.Stat(filepath.Join(v.Source, conf)); err != nil {
					t.Errorf("%s: mounted config: %v", name, err)
				}
				confs = true
			}
		}
		if !data || !confs {
			t.Errorf("%s: want a named volume on /data and ./nats on /etc/nats", name)
		}
		if svc.HealthCheck == nil || !strings.Contains(strings.Join(svc.HealthCheck.Test, " "), ":8222/healthz") {
			t.Errorf("%s: no health check on :8222/healthz", name)
		}
		for _, u := range users {
			if v := svc.Environment[strings.ToUpper(u)+"_PASSWORD"]; v == nil || *v == "" {
				t.Errorf("%s: %s_PASSWORD unset; the server would not start", name, strings.ToUpper(u))
			}
		}
	}
	check("nats", "single.conf")
	var cluster []string
	names := map[string]bool{}
	for name, svc := range p.Services {
		if slices.Contains(svc.Profiles, "cluster") {
			cluster = append(cluster, name)
			check(name, "cluster.conf")
			if n := svc.Environment["NATS_SERVER_NAME"]; n == nil || *n != name {
				t.Errorf("%s: NATS_SERVER_NAME = %q, want %s (cluster.conf routes use it)", name, str(n), name)
			} else {
				names[*n] = true
			}
		}
	}
	if len(cluster) != 3 || len(names) != 3 {
		t.Errorf("cluster profile has %v, want 3 distinct nats nodes", cluster)
	}
	if j, ok := p.Services["jaeger"]; !ok {
		t.Error("no jaeger service")
	} else {
		var otlp, ui bool
		for _, port := range j.Ports {
			otlp = otlp || port.Target == 4318
			ui = ui || port.Target == 16686
		}
		if !otlp || !ui {
			t.Errorf("jaeger must publish OTLP/HTTP 4318 and the UI 16686: %+v", j.Ports)
		}
	}
}

func str(p *string) string {
	if p == nil {
		return "<unset>"
	}
	return *p
}
