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

// command is one client command. Each has its own FlagSet, built by flags,
// so it parses only its own flags (anywhere on the line) and refuses
// others; "herald NAME --help" lists exactly those.
type command struct {
	name     string   // "subscriptions get"
	args     []string // positional arguments, in order
	synopsis string   // the flags worth showing in "herald help"
	summary  string
	// local commands talk to no server: no --server, --token, --output.
	local bool
	// flags declares the command's flags on fs and returns what runs it.
	flags func(fs *flag.FlagSet) runFunc
}

// runFunc runs a command with its positional arguments.
type runFunc func(ctx context.Context, x *invocation, args []string) error

// invocation is what a running command reaches: the client (nil for local
// commands), the environment and the output streams.
type invocation struct {
	c              *session
	getenv         func(string) string
	stdout, stderr io.Writer
}

// commands is the CLI, grouped by resource.
var commands = []command{
	// context
	{name: "context set", args: []string{"NAME"}, synopsis: "--server URL --token T", summary: "save a server and token as a named context", local: true, flags: contextSet},
	{name: "context use", args: []string{"NAME"}, summary: "make a context current", local: true, flags: contextUse},
	{name: "context list", summary: "list contexts (* is current)", local: true, flags: contextList},

	// tenants
	{name: "tenants create", synopsis: "--id ID --name NAME [--kind account|subaccount|project] [--parent ID]", summary: "create a tenant", flags: tenantsCreate},
	{name: "tenants list", synopsis: "[--cursor C] [--limit N]", summary: "list tenants", flags: tenantsList},
	{name: "tenants get", args: []string{"TENANT_ID"}, summary: "show a tenant", flags: tenantCall("GET")},
	{name: "tenants delete", args: []string{"TENANT_ID"}, summary: "delete a tenant", flags: tenantCall("DELETE")},

	// subscriptions
	{name: "subscriptions create", synopsis: "--tenant T --url URL --events a,b [--filter CEL] [--description D]\n        [--include-subaccounts] [--single-attempt] [--payload-mode M]", summary: "create a subscription (its secret is shown once)", flags: subscriptionsCreate},
	{name: "subscriptions list", synopsis: "--tenant T [--cursor C] [--limit N]", summary: "list a tenant's subscriptions", flags: subscriptionsList},
	{name: "subscriptions get", args: []string{"SUBSCRIPTION_ID"}, synopsis: "--tenant T", summary: "show a subscription", flags: subscriptionCall("GET", "")},
	{name: "subscriptions update", args: []string{"SUBSCRIPTION_ID"}, synopsis: `--tenant T --json '{"description":"..."}'`, summary: "change a subscription (JSON merge of the given fields)", flags: subscriptionsUpdate},
	{name: "subscriptions pause", args: []string{"SUBSCRIPTION_ID"}, synopsis: "--tenant T", summary: "hold deliveries", flags: subscriptionCall("POST", "/pause")},
	{name: "subscriptions resume", args: []string{"SUBSCRIPTION_ID"}, synopsis: "--tenant T", summary: "resume deliveries", flags: subscriptionCall("POST", "/resume")},
	{name: "subscriptions rotate-secret", args: []string{"SUBSCRIPTION_ID"}, synopsis: "--tenant T", summary: "issue a new signing secret (the old one stays valid for a while)", flags: subscriptionCall("POST", "/rotate-secret")},
	{name: "subscriptions delete", args: []string{"SUBSCRIPTION_ID"}, synopsis: "--tenant T", summary: "delete a subscription", flags: subscriptionCall("DELETE", "")},

	// keys
	{name: "keys create", synopsis: "--tenant T [--name N]", summary: "create a tenant API key (shown once)", flags: keysCreate},
	{name: "keys list", synopsis: "--tenant T", summary: "list a tenant's API keys", flags: keysList},
	{name: "keys revoke", args: []string{"KEY_ID"}, synopsis: "--tenant T", summary: "revoke an API key", flags: keysRevoke},

	// events
	{name: "send", synopsis: "--tenant T [--file F|-] | [--type TYPE [--source SRC] [--data JSON] [--id ID] [--subject S]]", summary: "send an event (or a JSON batch) to a tenant", flags: sendCmd},
	{name: "test", args: []string{"SUBSCRIPTION_ID"}, synopsis: "--tenant T", summary: "send a signed herald.test notification to a subscription now and show the answer", flags: testCmd},

	// deliveries
	{name: "deliveries list", synopsis: "--tenant T [--subscription ID] [--outcome O] [--since T] [--until T]", summary: "list deliveries (pairs) newest first, with their attempts", flags: deliveriesList},
	{name: "deliveries show", args: []string{"ID"}, synopsis: "--tenant T", summary: "show the deliveries of a notification id or of your event id", flags: deliveriesShow},
	{name: "tail", synopsis: "--tenant T [--subscription ID] [--type TYPE] [--outcome O] [--since T]", summary: "follow delivery attempts as they happen (from now, or --since)", flags: tailCmd},
	{name: "replay", synopsis: "--tenant T --subscription ID [--since T] [--until T] [--only-failed] | --pair PAIR_ID", summary: "resend a subscription's deliveries, or one pair", flags: replayCmd},

	// audit
	{name: "audit verify", synopsis: "--tenant T", summary: "check the tenant's hash-chained audit trail", flags: auditVerify},

	// local tools
	{name: "listen", synopsis: "[--addr 127.0.0.1:9000] [--secret whsec_..] [--public-key whpk_..] [--forward URL]\n        [--subscribe --tenant T --events a,b]", summary: "a local webhook receiver that checks signatures", flags: listenFlags},
}

// aliases name a command by a shorter line.
var aliases = map[string]string{"deliveries": "deliveries list", "context": "context list"}

const usageHead = `herald: webhook notification pipeline on NATS JetStream

usage:
  herald [serve]          run Herald on its embedded default
  herald bench [--events N] [--subs 1,10,100] [--rate 500] [--json bench.json]
                          load program against an embedded Herald
`

const usageTail = `
Client commands also take --server, --token and --output json|text, with
HERALD_URL and HERALD_TOKEN as defaults. Flags may come before or after the
arguments; "--" ends the flags. Run "herald COMMAND --help" for a command's flags.
`

func writeUsage(w io.Writer) {
	fmt.Fprint(w, usageHead)
	group := ""
	for _, cmd := range commands {
		if g, _, _ := strings.Cut(cmd.name, " "); g != group {
			group = g
			fmt.Fprintln(w)
		}
		line := "  herald " + strings.Join(append([]string{cmd.name}, cmd.args...), " ")
		if cmd.synopsis != "" {
			line += " " + cmd.synopsis
		}
		fmt.Fprintln(w, line)
		fmt.Fprintln(w, "        "+cmd.summary)
	}
	fmt.Fprint(w, usageTail)
}

// findCommand picks the command named by the first one or two words.
func findCommand(args []string) (*command, []string) {
	if len(args) > 1 {
		if cmd := lookup(args[0] + " " + args[1]); cmd != nil {
			return cmd, args[2:]
		}
	}
	if cmd := lookup(args[0]); cmd != nil {
		return cmd, args[1:]
	}
	return nil, args
}

func lookup(name string) *command {
	if a, ok := aliases[name]; ok {
		name = a
	}
	for i := range commands {
		if commands[i].name == name {
			return &commands[i]
		}
	}
	return nil
}

// isResource reports whether word names a group of commands.
func isResource(word string) bool {
	for _, cmd := range commands {
		if strings.HasPrefix(cmd.name, word+" ") {
			return true
		}
	}
	return false
}

// runClient dispatches the client commands. ok is false when args[0] is
// not a client command.
func runClient(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (ok bool, err error) {
	if len(args) == 0 {
		return false, nil
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		writeUsage(stdout)
		return true, nil
	case "bench":
		return true, benchCmd(ctx, args[1:], getenv, stdout, stderr)
	}
	cmd, rest := findCommand(args)
	if cmd == nil {
		if isResource(args[0]) {
			sub := ""
			if len(args) > 1 {
				sub = args[1]
			}
			return true, fmt.Errorf("unknown command: herald %s %s (see herald help)", args[0], sub)
		}
		return false, nil
	}
	return true, cmd.run(ctx, rest, getenv, stdout, stderr)
}

// run parses the command's own flags wherever they stand and runs it.
func (cmd *command) run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("herald "+cmd.name, flag.ContinueOnError)
	x := &invocation{getenv: getenv, stdout: stdout, stderr: stderr}
	if !cmd.local {
		x.c = &session{stdout: stdout}
		globalFlags(fs, x.c)
	}
	runIt := cmd.flags(fs)
	fs.Usage = func() { cmd.writeHelp(fs.Output(), fs) }
	if wantsHelp(args) {
		fs.SetOutput(stdout)
		fs.Usage()
		return nil
	}
	fs.SetOutput(io.Discard) // the error below says what was wrong
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return fmt.Errorf("herald %s: %w (see herald %s --help)", cmd.name, err, cmd.name)
	}
	if len(pos) > len(cmd.args) {
		return fmt.Errorf("herald %s: unexpected argument %q (see herald %s --help)", cmd.name, pos[len(cmd.args)], cmd.name)
	}
	if len(pos) < len(cmd.args) {
		return fmt.Errorf("herald %s: missing %s", cmd.name, cmd.args[len(pos)])
	}
	if x.c != nil {
		if err := x.c.resolve(getenv); err != nil {
			return err
		}
	}
	return runIt(ctx, x, pos)
}

func (cmd *command) writeHelp(w io.Writer, fs *flag.FlagSet) {
	line := "usage: herald " + strings.Join(append([]string{cmd.name}, cmd.args...), " ")
	if cmd.synopsis != "" {
		line += " " + cmd.synopsis
	}
	fmt.Fprintf(w, "%s\n\n%s\n\nflags:\n", line, cmd.summary)
	fs.SetOutput(w)
	fs.PrintDefaults()
}

// wantsHelp reports whether -h or --help stands among the flags.
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

// parseInterleaved parses flags before, between and after positional
// arguments, which the flag package alone stops at. Everything after "--"
// is positional.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

// tenantFlag declares the --tenant every tenant-scoped command requires.
func tenantFlag(fs *flag.FlagSet) func() (string, error) {
	t := fs.String("tenant", "", "tenant id (required)")
	return func() (string, error) {
		if *t == "" {
			return "", errors.New("--tenant is required")
		}
		return pathEscape(*t), nil
	}
}

// pageFlags declares --cursor and --limit.
func pageFlags(fs *flag.FlagSet) func(q url.Values) string {
	cursor := fs.String("cursor", "", "page cursor (next_cursor of the previous page)")
	limit := fs.Int("limit", 50, "page size")
	return func(q url.Values) string {
		if *cursor != "" {
			q.Set("cursor", *cursor)
		}
		q.Set("limit", fmt.Sprint(*limit))
		return "?" + q.Encode()
	}
}

// call sends one request and prints the answer ("ok" for an empty one).
func (x *invocation) call(ctx context.Context, method, path string, body any) error {
	var out any
	if err := x.c.api.DoJSON(ctx, method, path, body, &out); err != nil {
		return err
	}
	if out != nil {
		x.c.print(out)
	} else if x.c.output == "text" {
		fmt.Fprintln(x.stdout, "ok")
	}
	return nil
}

// --- context

func contextSet(fs *flag.FlagSet) runFunc {
	server := fs.String("server", "http://127.0.0.1:8080", "Herald URL")
	token := fs.String("token", "", "admin token or tenant API key")
	return func(_ context.Context, x *invocation, args []string) error {
		return editConfig(x.getenv, func(cfg *clientConfig) error {
			cfg.Contexts[args[0]] = clientContext{Server: *server, Token: *token}
			if cfg.Current == "" {
				cfg.Current = args[0]
			}
			return nil
		})
	}
}

func contextUse(*flag.FlagSet) runFunc {
	return func(_ context.Context, x *invocation, args []string) error {
		return editConfig(x.getenv, func(cfg *clientConfig) error {
			if _, ok := cfg.Contexts[args[0]]; !ok {
				return fmt.Errorf("no context %q", args[0])
			}
			cfg.Current = args[0]
			return nil
		})
	}
}

func contextList(*flag.FlagSet) runFunc {
	return func(_ context.Context, x *invocation, _ []string) error {
		cfg, _, err := loadClientConfig(x.getenv)
		if err != nil {
			return err
		}
		for name, c := range cfg.Contexts {
			mark := " "
			if name == cfg.Current {
				mark = "*"
			}
			fmt.Fprintf(x.stdout, "%s %-16s %s\n", mark, name, c.Server)
		}
		return nil
	}
}

// editConfig loads the client config, applies edit and saves it.
func editConfig(getenv func(string) string, edit func(*clientConfig) error) error {
	cfg, path, err := loadClientConfig(getenv)
	if err != nil {
		return err
	}
	if err := edit(&cfg); err != nil {
		return err
	}
	if err := os.MkdirAll(dirOf(path), 0o700); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(cfg, "", "  ")
	return os.WriteFile(path, b, 0o600)
}

func dirOf(p string) string {
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		return p[:i]
	}
	return "."
}

// --- tenants

func tenantsCreate(fs *flag.FlagSet) runFunc {
	id := fs.String("id", "", "tenant id")
	name := fs.String("name", "", "display name")
	kind := fs.String("kind", "account", "account, subaccount or project")
	parent := fs.String("parent", "", "parent tenant id")
	return func(ctx context.Context, x *invocation, _ []string) error {
		body := map[string]any{"id": *id, "name": *name, "kind": *kind}
		if *parent != "" {
			body["parent"] = *parent
		}
		return x.call(ctx, "POST", "/v1/tenants", body)
	}
}

func tenantsList(fs *flag.FlagSet) runFunc {
	page := pageFlags(fs)
	return func(ctx context.Context, x *invocation, _ []string) error {
		return x.call(ctx, "GET", "/v1/tenants"+page(url.Values{}), nil)
	}
}

func tenantCall(method string) func(*flag.FlagSet) runFunc {
	return func(*flag.FlagSet) runFunc {
		return func(ctx context.Context, x *invocation, args []string) error {
			return x.call(ctx, method, "/v1/tenants/"+pathEscape(args[0]), nil)
		}
	}
}

// --- subscriptions

func subscriptionsCreate(fs *flag.FlagSet) runFunc {
	tenant := tenantFlag(fs)
	urlFlag := fs.String("url", "", "endpoint URL")
	events := fs.String("events", "*", "comma-separated event types or patterns (alert.*)")
	filter := fs.String("filter", "", `CEL filter, e.g. data.severity == "Critical"`)
	desc := fs.String("description", "", "description")
	inclSub := fs.Bool("include-subaccounts", false, "also receive sub-accounts' notifications")
	single := fs.Bool("single-attempt", false, "make exactly one attempt")
	payloadMode := fs.String("payload-mode", "", "structured, binary or template")
	return func(ctx context.Context, x *invocation, _ []string) error {
		t, err := tenant()
		if err != nil {
			return err
		}
		body := map[string]any{"url": *urlFlag, "events": splitList(*events)}
		setBody(body, "filter", *filter)
		setBody(body, "description", *desc)
		setBody(body, "payload_mode", *payloadMode)
		if *inclSub {
			body["include_subaccounts"] = true
		}
		if *single {
			body["retry_policy"] = "single"
		}
		return x.call(ctx, "POST", "/v1/tenants/"+t+"/subscriptions", body)
	}
}

func subscriptionsList(fs *flag.FlagSet) runFunc {
	tenant := tenantFlag(fs)
	page := pageFlags(fs)
	return func(ctx context.Context, x *invocation, _ []string) error {
		t, err := tenant()
		if err != nil {
			return err
		}
		return x.call(ctx, "GET", "/v1/tenants/"+t+"/subscriptions"+page(url.Values{}), nil)
	}
}

// subscriptionCall is a command that is one request on a subscription.
func subscriptionCall(method, suffix string) func(*flag.FlagSet) runFunc {
	return func(fs *flag.FlagSet) runFunc {
		tenant := tenantFlag(fs)
		return func(ctx context.Context, x *invocation, args []string) error {
			t, err := tenant()
			if err != nil {
				return err
			}
			return x.call(ctx, method, "/v1/tenants/"+t+"/subscriptions/"+pathEscape(args[0])+suffix, nil)
		}
	}
}

func subscriptionsUpdate(fs *flag.FlagSet) runFunc {
	tenant := tenantFlag(fs)
	rawJSON := fs.String("json", "", "the fields to change, as a JSON object")
	return func(ctx context.Context, x *invocation, args []string) error {
		t, err := tenant()
		if err != nil {
			return err
		}
		var body map[string]any
		if err := json.Unmarshal([]byte(*rawJSON), &body); err != nil {
			return errors.New("--json must be a JSON object")
		}
		return x.call(ctx, "PATCH", "/v1/tenants/"+t+"/subscriptions/"+pathEscape(args[0]), body)
	}
}

// --- keys

func keysCreate(fs *flag.FlagSet) runFunc {
	tenant := tenantFlag(fs)
	name := fs.String("name", "", "key name")
	return func(ctx context.Context, x *invocation, _ []string) error {
		t, err := tenant()
		if err != nil {
			return err
		}
		return x.call(ctx, "POST", "/v1/tenants/"+t+"/keys", map[string]any{"name": *name})
	}
}

func keysList(fs *flag.FlagSet) runFunc {
	tenant := tenantFlag(fs)
	return func(ctx context.Context, x *invocation, _ []string) error {
		t, err := tenant()
		if err != nil {
			return err
		}
		return x.call(ctx, "GET", "/v1/tenants/"+t+"/keys", nil)
	}
}

func keysRevoke(fs *flag.FlagSet) runFunc {
	tenant := tenantFlag(fs)
	return func(ctx context.Context, x *invocation, args []string) error {
		t, err := tenant()
		if err != nil {
			return err
		}
		return x.call(ctx, "DELETE", "/v1/tenants/"+t+"/keys/"+pathEscape(args[0]), nil)
	}
}

// --- events

func sendCmd(fs *flag.FlagSet) runFunc {
	tenant := tenantFlag(fs)
	file := fs.String("file", "", "CloudEvent JSON file (an array for a batch), or - for stdin")
	evType := fs.String("type", "", "event type")
	source := fs.String("source", "urn:herald:cli", "event source")
	subject := fs.String("subject", "", "event subject")
	data := fs.String("data", "{}", "event data (JSON)")
	id := fs.String("id", "", "event id (default: a new UUID)")
	return func(ctx context.Context, x *invocation, _ []string) error {
		t, err := tenant()
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
			body, err = json.Marshal(ev)
		}
		if err != nil {
			return err
		}
		ct := "application/cloudevents+json"
		if strings.HasPrefix(strings.TrimSpace(string(body)), "[") {
			ct = "application/cloudevents-batch+json"
		}
		var out any
		if err := x.c.api.Do(ctx, "POST", "/v1/tenants/"+t+"/events", ct, body, &out); err != nil {
			return err
		}
		x.c.print(out)
		return nil
	}
}

// testCmd has no --type: the test call always sends herald.test (use send
// for an event of another type).
func testCmd(fs *flag.FlagSet) runFunc {
	return subscriptionCall("POST", "/test")(fs)
}

// --- deliveries

func deliveriesList(fs *flag.FlagSet) runFunc {
	tenant := tenantFlag(fs)
	subscription := fs.String("subscription", "", "only this subscription's deliveries")
	outcome := fs.String("outcome", "", "delivered, retrying, failed (any failure, retrying included), dead_lettered or replay_requested")
	since := fs.String("since", "", "RFC 3339 time: latest attempt at or after")
	until := fs.String("until", "", "RFC 3339 time: latest attempt before")
	page := pageFlags(fs)
	return func(ctx context.Context, x *invocation, _ []string) error {
		t, err := tenant()
		if err != nil {
			return err
		}
		q := url.Values{}
		setIf(q, "subscription", *subscription)
		setIf(q, "outcome", *outcome)
		setIf(q, "since", *since)
		setIf(q, "until", *until)
		var out deliveryPage
		if err := x.c.api.Do(ctx, "GET", "/v1/tenants/"+t+"/deliveries"+page(q), "", nil, &out); err != nil {
			return err
		}
		x.printDeliveries(out, false)
		return nil
	}
}

// deliveriesShow takes a notification id or the id of the user's own
// event (which may have caused several notifications).
func deliveriesShow(fs *flag.FlagSet) runFunc {
	tenant := tenantFlag(fs)
	return func(ctx context.Context, x *invocation, args []string) error {
		t, err := tenant()
		if err != nil {
			return err
		}
		var out deliveryPage
		for _, key := range []string{"notification", "event"} {
			q := url.Values{key: {args[0]}, "limit": {"500"}}
			if err := x.c.api.Do(ctx, "GET", "/v1/tenants/"+t+"/deliveries?"+q.Encode(), "", nil, &out); err != nil {
				return err
			}
			if len(out.Items) > 0 {
				break
			}
		}
		if len(out.Items) == 0 && x.c.output == "text" {
			return fmt.Errorf("no deliveries of notification or event %q", args[0])
		}
		x.printDeliveries(out, true)
		return nil
	}
}

func tailCmd(fs *flag.FlagSet) runFunc {
	tenant := tenantFlag(fs)
	subscription := fs.String("subscription", "", "only this subscription's attempts")
	evType := fs.String("type", "", "only attempts of notifications of this type")
	outcome := fs.String("outcome", "", "delivered, retrying, failed (any failure), dead_lettered or replay_requested")
	since := fs.String("since", "", "RFC 3339 time: show history from then (default: new attempts only)")
	return func(ctx context.Context, x *invocation, _ []string) error {
		t, err := tenant()
		if err != nil {
			return err
		}
		var from time.Time
		if *since != "" {
			if from, err = time.Parse(time.RFC3339Nano, *since); err != nil {
				return errors.New("--since must be an RFC 3339 time")
			}
		}
		return tail(ctx, x.c, tailQuery{tenant: t, subscription: *subscription, evType: *evType, outcome: *outcome, since: from}, x.stdout)
	}
}

func replayCmd(fs *flag.FlagSet) runFunc {
	tenant := tenantFlag(fs)
	subscription := fs.String("subscription", "", "the subscription to replay")
	since := fs.String("since", "", "RFC 3339 start time (default and earliest: the subscription's creation)")
	until := fs.String("until", "", "RFC 3339 end time (default: now)")
	onlyFailed := fs.Bool("only-failed", false, "only the retrying and dead-lettered pairs")
	pair := fs.String("pair", "", "resend one retrying or dead-lettered pair (its webhook-id)")
	return func(ctx context.Context, x *invocation, _ []string) error {
		t, err := tenant()
		if err != nil {
			return err
		}
		if *pair != "" {
			if *subscription != "" || *since != "" || *until != "" || *onlyFailed {
				return errors.New("herald replay: --pair takes no --subscription, --since, --until or --only-failed")
			}
			return x.call(ctx, "POST", "/v1/tenants/"+t+"/deliveries/"+pathEscape(*pair)+"/retry", nil)
		}
		if *subscription == "" {
			return errors.New("herald replay: give --subscription or --pair")
		}
		body := map[string]any{"only_failed": *onlyFailed}
		setBody(body, "since", *since)
		setBody(body, "until", *until)
		fmt.Fprintln(x.stderr, "replaying…")
		return x.call(ctx, "POST", "/v1/tenants/"+t+"/subscriptions/"+pathEscape(*subscription)+"/replay", body)
	}
}

// --- audit

func auditVerify(fs *flag.FlagSet) runFunc {
	tenant := tenantFlag(fs)
	return func(ctx context.Context, x *invocation, _ []string) error {
		t, err := tenant()
		if err != nil {
			return err
		}
		return x.call(ctx, "GET", "/v1/tenants/"+t+"/audit/verify", nil)
	}
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
