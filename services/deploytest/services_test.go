package deploytest

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/heraldhq/herald/services/internal/transport/natstest"
)

// The five per-service binaries, each configured with its environment from
// compose.yaml and connected as its own NATS user to a server running
// single.conf, provision everything and report ready without a single
// permissions violation; on SIGTERM each drains and exits 0.
func TestServicesRunWithTheirUsers(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the five service binaries; run without -short")
	}
	t.Parallel()
	bin := serviceBinaries(t)
	names := []string{"registry", "collector", "engine", "dispatcher", "audit"}
	p := startSingle(t)
	project := loadCompose(t)

	type running struct {
		name, addr string
		cmd        *exec.Cmd
		done       chan error
		log        string
	}
	var all []*running
	for _, name := range names {
		r := &running{name: name, addr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), done: make(chan error, 1)}
		env := []string{"PATH=" + os.Getenv("PATH")}
		for k, v := range project.Services[name].Environment {
			switch k {
			case "NATS_URL":
				env = append(env, k+"="+p.url())
			case "HERALD_HTTP_ADDR":
				env = append(env, k+"="+r.addr)
			case "OTEL_EXPORTER_OTLP_ENDPOINT": // no collector here
			default:
				env = append(env, k+"="+str(v))
			}
		}
		r.cmd = exec.Command(filepath.Join(bin, "herald-"+name))
		r.cmd.Env = env
		r.log = filepath.Join(t.TempDir(), name+".log")
		f, err := os.Create(r.log)
		if err != nil {
			t.Fatal(err)
		}
		r.cmd.Stdout, r.cmd.Stderr = f, f
		if err := r.cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		go func() { r.done <- r.cmd.Wait(); f.Close() }()
		t.Cleanup(func() { _ = r.cmd.Process.Kill() })
		all = append(all, r)
	}
	logOf := func(r *running) string { b, _ := os.ReadFile(r.log); return string(b) }

	for _, r := range all {
		natstest.Eventually(t, 60*time.Second, func() error {
			select {
			case err := <-r.done:
				t.Fatalf("%s exited: %v\n%s", r.name, err, logOf(r))
			default:
			}
			resp, err := http.Get("http://" + r.addr + "/readyz")
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s /readyz: %d", r.name, resp.StatusCode)
			}
			return nil
		})
	}
	for _, r := range all {
		if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range all {
		select {
		case err := <-r.done:
			var ee *exec.ExitError
			if errors.As(err, &ee) || err != nil {
				t.Errorf("%s exited with %v after SIGTERM:\n%s", r.name, err, logOf(r))
			}
		case <-time.After(40 * time.Second):
			t.Errorf("%s did not exit within 40s of SIGTERM", r.name)
		}
	}
	serverLog := ""
	matches, _ := filepath.Glob(p.conf + ".*.log")
	for _, m := range matches {
		b, _ := os.ReadFile(m)
		serverLog += string(b)
	}
	if serverLog == "" {
		t.Fatal("no nats-server log to check for violations")
	}
	for _, line := range strings.Split(serverLog, "\n") {
		if strings.Contains(line, "Violation") {
			t.Errorf("nats-server: %s", line)
		}
	}
}
