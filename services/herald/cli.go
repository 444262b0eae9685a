package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/heraldhq/herald/pkg/client"
)

// The herald command is both the embedded server (no subcommand, or
// "serve") and the client of a running Herald's HTTP API.
//
// Server address and token come from --server/--token, then HERALD_URL and
// HERALD_TOKEN, then the current context in the user's config dir.

// clientConfig is the file kept at <user config dir>/herald/config.json.
type clientConfig struct {
	Current  string                   `json:"current"`
	Contexts map[string]clientContext `json:"contexts"`
}

type clientContext struct {
	Server string `json:"server"`
	Token  string `json:"token"`
}

func configPath(getenv func(string) string) (string, error) {
	if p := getenv("HERALD_CONFIG"); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "herald", "config.json"), nil
}

func loadClientConfig(getenv func(string) string) (clientConfig, string, error) {
	c := clientConfig{Contexts: map[string]clientContext{}}
	path, err := configPath(getenv)
	if err != nil {
		return c, "", err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, path, nil
	}
	if err != nil {
		return c, path, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, path, fmt.Errorf("%s: %w", path, err)
	}
	if c.Contexts == nil {
		c.Contexts = map[string]clientContext{}
	}
	return c, path, nil
}

// session is a client command's connection to a running Herald: the
// flags that choose the server and token, the API client built from them,
// and how answers are printed.
type session struct {
	server string
	token  string
	output string // "text" or "json"
	stdout io.Writer
	api    *client.Client
}

// globalFlags are accepted by every client subcommand.
func globalFlags(fs *flag.FlagSet, c *session) {
	fs.StringVar(&c.server, "server", "", "Herald URL (env HERALD_URL, default http://127.0.0.1:8080)")
	fs.StringVar(&c.token, "token", "", "admin token or tenant API key (env HERALD_TOKEN)")
	fs.StringVar(&c.output, "output", "text", "output format: text or json")
}

func (c *session) resolve(getenv func(string) string) error {
	cfg, _, err := loadClientConfig(getenv)
	if err != nil {
		return err
	}
	cur := cfg.Contexts[cfg.Current]
	if c.server == "" {
		c.server = firstNonEmpty(getenv("HERALD_URL"), cur.Server, "http://127.0.0.1:8080")
	}
	if c.token == "" {
		c.token = firstNonEmpty(getenv("HERALD_TOKEN"), cur.Token)
	}
	if c.output != "text" && c.output != "json" {
		return fmt.Errorf("--output must be text or json")
	}
	c.api = client.New(c.server, client.WithToken(c.token))
	return nil
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// print shows a JSON answer: as indented JSON with --output json, else as a
// short key: value listing (or one line per item for lists).
func (c *session) print(v any) {
	if c.output == "json" {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(v)
		return
	}
	switch t := v.(type) {
	case map[string]any:
		for _, key := range []string{"items", "data", "records", "attempts", "tenants", "subscriptions", "keys"} {
			if items, ok := t[key].([]any); ok {
				for _, it := range items {
					fmt.Fprintln(c.stdout, oneLine(it))
				}
				if next, ok := t["next_cursor"].(string); ok && next != "" {
					fmt.Fprintf(c.stdout, "(more: --cursor %s)\n", next)
				}
				return
			}
		}
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(c.stdout, "%-22s %s\n", k+":", compact(t[k]))
		}
	case []any:
		for _, it := range t {
			fmt.Fprintln(c.stdout, oneLine(it))
		}
	default:
		fmt.Fprintln(c.stdout, compact(v))
	}
}

func oneLine(v any) string {
	m, ok := v.(map[string]any)
	if !ok {
		return compact(v)
	}
	var parts []string
	for _, k := range []string{"id", "seq", "kind", "name", "url", "events", "status", "outcome", "statusCode", "latencyMs", "subscriptionId", "notificationId", "type", "at", "startedAt"} {
		if val, ok := m[k]; ok {
			parts = append(parts, k+"="+compact(val))
		}
	}
	if len(parts) == 0 {
		return compact(v)
	}
	return strings.Join(parts, "  ")
}

func compact(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// pathEscape escapes one path segment.
func pathEscape(s string) string { return url.PathEscape(s) }
