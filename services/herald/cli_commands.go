package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"
)

const usage = `herald: webhook notification pipeline on NATS JetStream

usage:
  herald [serve]                          run Herald on its embedded default
  herald context set NAME --server URL --token T | use NAME | list
  herald tenants create --id ID --name NAME [--kind account|subaccount|project] [--parent ID]
  herald tenants list | get ID | delete ID
  herald subscriptions create --tenant T --url URL --events a,b [--filter CEL] [--description D]
                              [--include-subaccounts] [--single-attempt] [--payload-mode M]
  herald subscriptions list --tenant T | get|pause|resume|rotate-secret|delete --tenant T ID
  herald subscriptions update --tenant T ID --json '{"description":"..."}'
  herald keys create --tenant T [--name N] | list --tenant T | revoke --tenant T ID
  herald send --tenant T [--file F|-] | [--type TYPE --source SRC --data JSON [--id ID] [--subject S]]
  herald test --tenant T SUBSCRIPTION_ID
  herald deliveries --tenant T [--subscription ID] [--outcome O] | deliveries show --tenant T NOTIFICATION_ID
  herald tail --tenant T [--subscription ID] [--type TYPE] [--outcome O]
  herald replay --tenant T --subscription ID [--since RFC3339] [--until RFC3339] [--only-failed]
  herald replay --tenant T --pair PAIR_ID
  herald audit verify --tenant T
  herald bench [--events N] [--subs 1,10,100] [--rate 500] [--json bench.json]
                                          load program against an embedded Herald
  herald listen [--addr 127.0.0.1:9000] [--secret whsec_..] [--public-key whpk_..] [--forward URL]
                [--subscribe --tenant T --events a,b]

Every client command takes --server, --token and --output json|text, with
HERALD_URL and HERALD_TOKEN as defaults. Run "herald COMMAND -h" for flags.
`

// runClient dispatches the client subcommands. ok is false when args[0] is
// not a client command.
func runClient(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (ok bool, err error) {
	if len(args) == 0 {
		return false, nil
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return true, nil
	case "context":
		return true, contextCmd(rest, getenv, stdout)
	case "tenants", "subscriptions", "keys", "send", "test", "deliveries", "replay", "audit", "tail":
		return true, apiCmd(ctx, cmd, rest, getenv, stdout, stderr)
	case "listen":
		return true, listenCmd(ctx, rest, getenv, stdout, stderr)
	case "bench":
		return true, benchCmd(ctx, rest, getenv, stdout, stderr)
	}
	return false, nil
}

func contextCmd(args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: herald context set NAME --server URL --token T | use NAME | list")
	}
	cfg, path, err := loadClientConfig(getenv)
	if err != nil {
		return err
	}
	save := func() error {
		if err := os.MkdirAll(dirOf(path), 0o700); err != nil {
			return err
		}
		b, _ := json.MarshalIndent(cfg, "", "  ")
		return os.WriteFile(path, b, 0o600)
	}
	switch args[0] {
	case "list":
		for name, c := range cfg.Contexts {
			mark := " "
			if name == cfg.Current {
				mark = "*"
			}
			fmt.Fprintf(stdout, "%s %-16s %s\n", mark, name, c.Server)
		}
		return nil
	case "use":
		if len(args) != 2 {
			return errors.New("usage: herald context use NAME")
		}
		if _, ok := cfg.Contexts[args[1]]; !ok {
			return fmt.Errorf("no context %q", args[1])
		}
		cfg.Current = args[1]
		return save()
	case "set":
		fs := flag.NewFlagSet("context set", flag.ContinueOnError)
		server := fs.String("server", "http://127.0.0.1:8080", "Herald URL")
		token := fs.String("token", "", "admin token or tenant API key")
		if len(args) < 2 {
			return errors.New("usage: herald context set NAME --server URL --token T")
		}
		if err := fs.Parse(args[2:]); err != nil {
			return err
		}
		cfg.Contexts[args[1]] = clientContext{Server: *server, Token: *token}
		if cfg.Current == "" {
			cfg.Current = args[1]
		}
		return save()
	}
	return fmt.Errorf("unknown context command %q", args[0])
}

func dirOf(p string) string {
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		return p[:i]
	}
	return "."
}

// apiCmd runs the client commands that are one or a few HTTP calls.
func apiCmd(ctx context.Context, cmd string, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := &client{stdout: stdout}
	sub := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") && cmd != "test" {
		sub, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("herald "+cmd+" "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	globalFlags(fs, c)
	tenant := fs.String("tenant", "", "tenant id")
	id := fs.String("id", "", "id")
	name := fs.String("name", "", "name")
	kind := fs.String("kind", "account", "tenant kind")
	parent := fs.String("parent", "", "parent tenant id")
	urlFlag := fs.String("url", "", "endpoint URL")
	events := fs.String("events", "*", "comma-separated event types or patterns (alert.*)")
	filter := fs.String("filter", "", "CEL filter, e.g. data.severity == \"Critical\"")
	desc := fs.String("description", "", "description")
	inclSub := fs.Bool("include-subaccounts", false, "also receive sub-accounts' notifications")
	single := fs.Bool("single-attempt", false, "make exactly one attempt")
	payloadMode := fs.String("payload-mode", "", "structured, binary or template")
	rawJSON := fs.String("json", "", "request body for update")
	file := fs.String("file", "", "CloudEvent JSON file, or - for stdin")
	evType := fs.String("type", "", "event type")
	source := fs.String("source", "urn:herald:cli", "event source")
	subject := fs.String("subject", "", "event subject")
	data := fs.String("data", "{}", "event data (JSON)")
	subscription := fs.String("subscription", "", "subscription id")
	outcome := fs.String("outcome", "", "delivered, retrying, failed or dead_lettered")
	since := fs.String("since", "", "RFC 3339 start time")
	until := fs.String("until", "", "RFC 3339 end time")
	onlyFailed := fs.Bool("only-failed", false, "replay only failed or dead-lettered pairs")
	pair := fs.String("pair", "", "delivery pair id (webhook-id)")
	cursor := fs.String("cursor", "", "page cursor")
	limit := fs.Int("limit", 50, "page size")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := c.resolve(getenv); err != nil {
		return err
	}
	pos := fs.Args()
	arg := func(i int, what string) (string, error) {
		if len(pos) <= i {
			return "", fmt.Errorf("herald %s %s: missing %s", cmd, sub, what)
		}
		return pos[i], nil
	}
	needTenant := func() (string, error) {
		if *tenant == "" {
			return "", fmt.Errorf("herald %s %s: --tenant is required", cmd, sub)
		}
		return pathEscape(*tenant), nil
	}
	page := func(q url.Values) string {
		if *cursor != "" {
			q.Set("cursor", *cursor)
		}
		q.Set("limit", fmt.Sprint(*limit))
		return "?" + q.Encode()
	}
	var out any
	jsonBody := func(v any) []byte { b, _ := json.Marshal(v); return b }
	call := func(method, path string, body []byte) error {
		ct := ""
		if body != nil {
			ct = "application/json"
		}
		if err := c.do(ctx, method, path, ct, body, &out); err != nil {
			return err
		}
		if out != nil {
			c.print(out)
		} else if c.output == "text" {
			fmt.Fprintln(stdout, "ok")
		}
		return nil
	}

	switch cmd + " " + sub {
	case "tenants create":
		body := map[string]any{"id": *id, "name": *name, "kind": *kind}
		if *parent != "" {
			body["parent"] = *parent
		}
		return call("POST", "/v1/tenants", jsonBody(body))
	case "tenants list":
		return call("GET", "/v1/tenants"+page(url.Values{}), nil)
	case "tenants get", "tenants delete":
		tid, err := arg(0, "tenant id")
		if err != nil {
			return err
		}
		method := map[string]string{"get": "GET", "delete": "DELETE"}[sub]
		return call(method, "/v1/tenants/"+pathEscape(tid), nil)

	case "subscriptions create":
		t, err := needTenant()
		if err != nil {
			return err
		}
		body := map[string]any{"url": *urlFlag, "events": splitList(*events)}
		if *filter != "" {
			body["filter"] = *filter
		}
		if *desc != "" {
			body["description"] = *desc
		}
		if *inclSub {
			body["include_subaccounts"] = true
		}
		if *single {
			body["retry_policy"] = "single"
		}
		if *payloadMode != "" {
			body["payload_mode"] = *payloadMode
		}
		return call("POST", "/v1/tenants/"+t+"/subscriptions", jsonBody(body))
	case "subscriptions list":
		t, err := needTenant()
		if err != nil {
			return err
		}
		return call("GET", "/v1/tenants/"+t+"/subscriptions"+page(url.Values{}), nil)
	case "subscriptions get", "subscriptions delete", "subscriptions pause", "subscriptions resume", "subscriptions rotate-secret", "subscriptions update":
		t, err := needTenant()
		if err != nil {
			return err
		}
		sid, err := arg(0, "subscription id")
		if err != nil {
			return err
		}
		p := "/v1/tenants/" + t + "/subscriptions/" + pathEscape(sid)
		switch sub {
		case "get":
			return call("GET", p, nil)
		case "delete":
			return call("DELETE", p, nil)
		case "update":
			if !json.Valid([]byte(*rawJSON)) {
				return errors.New("--json must be a JSON object")
			}
			return call("PATCH", p, []byte(*rawJSON))
		default:
			return call("POST", p+"/"+sub, nil)
		}

	case "keys create":
		t, err := needTenant()
		if err != nil {
			return err
		}
		return call("POST", "/v1/tenants/"+t+"/keys", jsonBody(map[string]any{"name": *name}))
	case "keys list":
		t, err := needTenant()
		if err != nil {
			return err
		}
		return call("GET", "/v1/tenants/"+t+"/keys", nil)
	case "keys revoke":
		t, err := needTenant()
		if err != nil {
			return err
		}
		kid, err := arg(0, "key id")
		if err != nil {
			return err
		}
		return call("DELETE", "/v1/tenants/"+t+"/keys/"+pathEscape(kid), nil)

	case "send ":
		t, err := needTenant()
		if err != nil {
			return err
		}
		var body []byte
		switch {
		case *file == "-":
			body, err = io.ReadAll(os.Stdin)
		case *file != "":
			body, err = os.ReadFile(*file)
		default:
			if *evType == "" {
				return errors.New("herald send: give --file or --type")
			}
			if !json.Valid([]byte(*data)) {
				return errors.New("--data must be JSON")
			}
			evID := *id
			if evID == "" {
				evID = uuid.NewString()
			}
			ev := map[string]any{"specversion": "1.0", "id": evID, "source": *source, "type": *evType,
				"time": time.Now().UTC().Format(time.RFC3339Nano), "datacontenttype": "application/json", "data": json.RawMessage(*data)}
			if *subject != "" {
				ev["subject"] = *subject
			}
			body = jsonBody(ev)
		}
		if err != nil {
			return err
		}
		ct := "application/cloudevents+json"
		if strings.HasPrefix(strings.TrimSpace(string(body)), "[") {
			ct = "application/cloudevents-batch+json"
		}
		if err := c.do(ctx, "POST", "/v1/tenants/"+t+"/events", ct, body, &out); err != nil {
			return err
		}
		c.print(out)
		return nil

	case "test ":
		t, err := needTenant()
		if err != nil {
			return err
		}
		sid, err := arg(0, "subscription id")
		if err != nil {
			return err
		}
		return call("POST", "/v1/tenants/"+t+"/subscriptions/"+pathEscape(sid)+"/test", nil)

	case "deliveries ", "deliveries list":
		t, err := needTenant()
		if err != nil {
			return err
		}
		q := url.Values{}
		setIf(q, "subscription", *subscription)
		setIf(q, "outcome", *outcome)
		setIf(q, "since", *since)
		setIf(q, "until", *until)
		return call("GET", "/v1/tenants/"+t+"/deliveries"+page(q), nil)
	case "deliveries show":
		t, err := needTenant()
		if err != nil {
			return err
		}
		nid, err := arg(0, "notification id")
		if err != nil {
			return err
		}
		return call("GET", "/v1/tenants/"+t+"/audit"+page(url.Values{"notification": {nid}}), nil)

	case "tail ":
		t, err := needTenant()
		if err != nil {
			return err
		}
		return tail(ctx, c, t, *subscription, *evType, *outcome, stdout)

	case "replay ":
		t, err := needTenant()
		if err != nil {
			return err
		}
		if *pair != "" {
			return call("POST", "/v1/tenants/"+t+"/deliveries/"+pathEscape(*pair)+"/retry", nil)
		}
		if *subscription == "" {
			return errors.New("herald replay: give --subscription or --pair")
		}
		body := map[string]any{"only_failed": *onlyFailed}
		setBody(body, "since", *since)
		setBody(body, "until", *until)
		fmt.Fprintln(stderr, "replaying…")
		return call("POST", "/v1/tenants/"+t+"/subscriptions/"+pathEscape(*subscription)+"/replay", jsonBody(body))

	case "audit verify":
		t, err := needTenant()
		if err != nil {
			return err
		}
		return call("GET", "/v1/tenants/"+t+"/audit/verify", nil)
	}
	return fmt.Errorf("unknown command: herald %s %s (see herald help)", cmd, sub)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func setIf(q url.Values, k, v string) {
	if v != "" {
		q.Set(k, v)
	}
}

func setBody(m map[string]any, k, v string) {
	if v != "" {
		m[k] = v
	}
}
