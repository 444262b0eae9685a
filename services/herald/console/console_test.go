package console

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("GET "+Prefix, Handler())
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	resp := rec.Result()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestServesPageWithStrictHeaders(t *testing.T) {
	for _, tc := range []struct{ path, ctype, contains string }{
		{"/console/", "text/html", `<script type="module" src="js/app.js">`},
		{"/console/js/app.js", "text/javascript", "import"},
		{"/console/console.css", "text/css", ":root"},
	} {
		resp, body := get(t, tc.path)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d", tc.path, resp.StatusCode)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tc.ctype) {
			t.Errorf("GET %s: Content-Type %q, want %s", tc.path, ct, tc.ctype)
		}
		if !strings.Contains(body, tc.contains) {
			t.Errorf("GET %s: body lacks %q", tc.path, tc.contains)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if csp != ContentSecurityPolicy {
			t.Errorf("GET %s: CSP %q", tc.path, csp)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no nosniff", tc.path)
		}
	}
}

func TestPolicyIsStrict(t *testing.T) {
	for _, bad := range []string{"unsafe-inline", "unsafe-eval", "http:", "https:", "*"} {
		if strings.Contains(ContentSecurityPolicy, bad) {
			t.Errorf("CSP allows %q: %s", bad, ContentSecurityPolicy)
		}
	}
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "connect-src 'self'"} {
		if !strings.Contains(ContentSecurityPolicy, want) {
			t.Errorf("CSP lacks %q", want)
		}
	}
}

func TestNoDirectoryListingOrMissingFile(t *testing.T) {
	for _, p := range []string{"/console/js/", "/console/nope.js"} {
		if resp, body := get(t, p); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d %q, want 404", p, resp.StatusCode, body)
		}
	}
}

// The assets must work under the CSP and without the network: no inline
// script or style, no handler attributes, no third-party URL, and no
// markup built from strings (API data and receivers' answers are text).
func TestAssetsNeedNothingTheCSPForbids(t *testing.T) {
	inlineScript := regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`)
	handlerAttr := regexp.MustCompile(`(?i)\son[a-z]+\s*=`)
	external := regexp.MustCompile(`(?i)(?:src|href|url\()\s*=?\s*["']?(?:https?:)?//`)
	files := 0
	err := fs.WalkDir(static, "static", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files++
		b, err := fs.ReadFile(static, path)
		if err != nil {
			return err
		}
		src := string(b)
		switch {
		case strings.HasSuffix(path, ".html"):
			if inlineScript.MatchString(src) {
				t.Errorf("%s has an inline script", path)
			}
			if strings.Contains(src, "<style") || strings.Contains(src, "style=") {
				t.Errorf("%s has inline style", path)
			}
			if handlerAttr.MatchString(src) {
				t.Errorf("%s has an inline event handler", path)
			}
		case strings.HasSuffix(path, ".js"):
			for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "localStorage"} {
				if strings.Contains(src, bad) {
					t.Errorf("%s uses %s", path, bad)
				}
			}
		}
		if external.MatchString(src) {
			t.Errorf("%s loads from another origin: %q", path, external.FindString(src))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 5 {
		t.Fatalf("only %d embedded files", files)
	}
}
