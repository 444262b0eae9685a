// Package console serves Herald's web console at /console/: HTML, CSS and
// JavaScript modules embedded in the binary. The console is a client of
// the public HTTP API only: it keeps the admin token or tenant API key the
// user enters in the browser's sessionStorage and sends it as a bearer
// token, so it sees exactly what that credential sees. The server side
// holds no state and no credential; it only serves the files with a strict
// Content-Security-Policy.
package console

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

// Prefix is where the console is mounted.
const Prefix = "/console/"

//go:embed static
var static embed.FS

// ContentSecurityPolicy allows only the console's own scripts, styles and
// API calls: no inline script or style, no third-party origin, no framing.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Handler serves the console's files under Prefix.
func Handler() http.Handler {
	files, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embed directive guarantees the directory
	}
	serve := http.StripPrefix(Prefix, http.FileServerFS(files))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		// Directory listings would only show file names, but nothing
		// needs them: the console's one page is the prefix itself.
		if p := r.URL.Path; p != Prefix && strings.HasSuffix(p, "/") {
			http.NotFound(w, r)
			return
		}
		serve.ServeHTTP(w, r)
	})
}
