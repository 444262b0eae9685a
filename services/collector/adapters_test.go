package collector

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/heraldhq/herald/schemas"
	"github.com/heraldhq/herald/services/internal/transport/natstest"
)

// The exact reference samples (shared/reference 000-003, the vManage one
// converted from its Python repr to JSON) become typed, valid CloudEvents.
var adapterCases = []struct {
	adapter, file, query string
	typ, id, subject     string
	action               string
}{
	{"vmanage", "vmanage-alarm.json", "", "vmanage.alarm", "226bd188-35e8-450f-b40b-b0c5f279f562/active", "226bd188-35e8-450f-b40b-b0c5f279f562", ""},
	{"lmc", "lmc-alert.json", "", "lmc.alert", "UUID/string/", "UUID", ""},
	{"clc-account", "clc-account.json", "action=created", "clc.account", "account/created/DEMO/", "DEMO", "created"},
	{"clc-user", "clc-user.json", "action=updated", "clc.user", "user/updated/demo@user.com/", "demo@user.com", "updated"},
	{"clc-server", "clc-server.json", "action=created", "clc.server", "server/created/WA1DEMOSERVER01/", "WA1DEMOSERVER01", "created"},
	{"clc-server", "clc-server-deleted.json", "", "clc.server", "server/deleted/WA1DEMOSERVER01/", "WA1DEMOSERVER01", "deleted"},
	{"clc-server", "clc-server-deleted.json", "action=deleted", "clc.server", "server/deleted/WA1DEMOSERVER01/", "WA1DEMOSERVER01", "deleted"},
	{"clc-alert", "clc-alert.json", "", "clc.alert", "alert/WA1DEMOSERVER01/", "WA1DEMOSERVER01", ""},
	{"device-operation", "device-operation-request.json", "", "device.operation.requested", "request/UUID-DO-REBOOT", "UUID-DO-REBOOT", ""},
	{"device-operation", "device-operation-result.json", "", "device.operation.result", "result/UUID-DO-REBOOT/success", "UUID-DO-REBOOT", ""},
	{"device-operation", "device-operation-result.json", "kind=result", "device.operation.result", "result/UUID-DO-REBOOT/success", "UUID-DO-REBOOT", ""},
}

func readSample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Pure mapping: ids are deterministic and the data validates.
func TestAdaptReferenceSamples(t *testing.T) {
	for _, c := range adapterCases {
		t.Run(c.adapter+"/"+c.file+"?"+c.query, func(t *testing.T) {
			body := readSample(t, c.file)
			q, _ := url.ParseQuery(c.query)
			e, fe := adapt("acme", c.adapter, adapters[c.adapter], body, q)
			if fe != nil {
				t.Fatalf("rejected: %+v", fe)
			}
			again, _ := adapt("acme", c.adapter, adapters[c.adapter], body, q)
			if e.ID() != again.ID() {
				t.Errorf("id not deterministic: %s, %s", e.ID(), again.ID())
			}
			if e.Type() != c.typ || !strings.HasPrefix(e.ID(), c.id) || e.Subject() != c.subject {
				t.Errorf("got type %s id %s subject %s", e.Type(), e.ID(), e.Subject())
			}
			if got, _ := e.Extensions()["action"].(string); got != c.action {
				t.Errorf("action %q, want %q", got, c.action)
			}
			if e.Source() != "/v1/tenants/acme/sources/"+c.adapter {
				t.Errorf("source %s", e.Source())
			}
			if err := schemas.Validate(e.Type(), e.Data()); err != nil {
				t.Errorf("data does not validate: %v", err)
			}
			var compact bytes.Buffer
			_ = json.Compact(&compact, body)
			if !bytes.Equal(e.Data(), compact.Bytes()) {
				t.Errorf("data is not the posted payload")
			}
		})
	}
}

func TestAdaptRejects(t *testing.T) {
	for _, c := range []struct{ adapter, body, query, pointer string }{
		{"vmanage", `{"active":true}`, "", "/uuid"},
		{"vmanage", `{"uuid":"u"}`, "", "/active"},
		{"vmanage", `not json`, "", ""},
		{"lmc", `{"title":"x"}`, "", "/alertId"},
		{"clc-account", `{"accountAlias":"DEMO"}`, "", "query:action"},
		{"clc-account", `{"accountAlias":"DEMO"}`, "action=exploded", "query:action"},
		{"clc-user", `{"accountAlias":"DEMO"}`, "action=created", "/userName"},
		{"clc-server", `{"name":"S","id":"S","status":"active"}`, "", "query:action"},
		{"clc-alert", `{"accountAlias":"DEMO"}`, "", "/serverName"},
		{"device-operation", `{"router_id":"RTR-42"}`, "", ""},
		{"device-operation", `{"router_id":"RTR-42","status":"success"}`, "", "/protocolo"},
		{"device-operation", `{"protocolo":"p","router_id":"RTR-42"}`, "kind=result", "/status"},
		{"device-operation", `{"protocolo":"p"}`, "kind=maybe", "query:kind"},
	} {
		q, _ := url.ParseQuery(c.query)
		_, fe := adapt("acme", c.adapter, adapters[c.adapter], []byte(c.body), q)
		if fe == nil || fe.Pointer != c.pointer || fe.Detail == "" {
			t.Errorf("%s %s ?%s: got %+v, want pointer %q", c.adapter, c.body, c.query, fe, c.pointer)
		}
	}
}

// Through HTTP and JetStream, as curl would post them; a re-post dedups.
func TestSourcesEndToEnd(t *testing.T) {
	t.Parallel()
	h := start(t, natstest.Run(t), testConfig())
	for _, c := range adapterCases {
		path := "/v1/tenants/acme/sources/" + c.adapter
		if c.query != "" {
			path += "?" + c.query
		}
		code, _, b := h.post(t, path, "application/json", string(readSample(t, c.file)))
		if code != http.StatusAccepted {
			t.Fatalf("%s %s: %d %s", c.adapter, c.file, code, b)
		}
		e := lastEvent(t, h.ns.JS, "events.acme."+c.typ)
		if e.Extensions()["tenant"] != "acme" || !strings.HasPrefix(e.ID(), c.id) {
			t.Errorf("%s stored %v", c.adapter, e)
		}
	}
	code, _, b := h.post(t, "/v1/tenants/acme/sources/vmanage", "application/json", string(readSample(t, "vmanage-alarm.json")))
	if code != http.StatusAccepted || decodeResponse(t, b).Results[0].Status != statusDuplicate {
		t.Errorf("re-posted alarm: %d %s", code, b)
	}
	cleared := strings.Replace(string(readSample(t, "vmanage-alarm.json")), `"active": true`, `"active": false`, 1)
	code, _, b = h.post(t, "/v1/tenants/acme/sources/vmanage", "application/json", cleared)
	if code != http.StatusAccepted || decodeResponse(t, b).Results[0].Status != statusAccepted {
		t.Errorf("cleared alarm: %d %s", code, b)
	}
	// A schema violation names the pointer inside data.
	bad := strings.Replace(string(readSample(t, "clc-alert.json")), `"notTriggered"`, `"sleeping"`, 1)
	code, _, b = h.post(t, "/v1/tenants/acme/sources/clc-alert", "application/json", bad)
	if code != http.StatusBadRequest || !strings.Contains(string(b), `"/data/triggers/0/state"`) {
		t.Errorf("bad clc alert: %d %s", code, b)
	}
}

func TestVManageBasicAuth(t *testing.T) {
	t.Parallel()
	h := start(t, natstest.Run(t), testConfig())
	alarm := string(readSample(t, "vmanage-alarm.json"))
	basic := func(user, pass string) []string {
		r, _ := http.NewRequest("GET", "/", nil)
		r.SetBasicAuth(user, pass)
		return []string{"Authorization", r.Header.Get("Authorization")}
	}
	if code, _, b := h.post(t, "/v1/tenants/acme/sources/vmanage", "application/json", alarm, basic("cleur", "cleur")...); code != http.StatusAccepted {
		t.Errorf("right credentials: %d %s", code, b)
	}
	for name, c := range map[string]struct {
		tenant  string
		headers []string
	}{
		"wrong password":        {"acme", basic("cleur", "wrong")},
		"wrong user":            {"acme", basic("admin", "cleur")},
		"tenant without source": {"beta", basic("cleur", "cleur")},
		"unknown tenant":        {"nobody", basic("cleur", "cleur")},
	} {
		code, hdr, b := h.post(t, "/v1/tenants/"+c.tenant+"/sources/vmanage", "application/json", alarm, c.headers...)
		if code != http.StatusUnauthorized || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Basic") {
			t.Errorf("%s: %d %s", name, code, b)
		}
	}
	// Basic credentials of one adapter do not open another.
	if code, _, _ := h.post(t, "/v1/tenants/acme/sources/lmc", "application/json", string(readSample(t, "lmc-alert.json")), basic("cleur", "cleur")...); code != http.StatusUnauthorized {
		t.Errorf("vmanage credentials on lmc: %d", code)
	}
}
