// Package ui is Glimpse's web interface: plain HTML, CSS and JavaScript
// embedded in the binary (no build step) and served at / and /ui/. The pages
// talk to the public API only: /v1/images, /v1/uploads, /v1/events and
// /v1/stats/*.
package ui

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed assets
var assets embed.FS

// ContentSecurityPolicy is sent with every UI response: scripts, styles and
// connections from this origin only (no inline code), images also from
// blob: URLs (thumbnails fetched with the API key) and data: URLs.
// Connections may also go to the origins given: where pre-signed upload
// URLs point when that is not Glimpse (an S3 endpoint).
func ContentSecurityPolicy(connect ...string) string {
	src := "'self'"
	for _, o := range connect {
		if o != "" {
			src += " " + o
		}
	}
	return "default-src 'none'; script-src 'self'; style-src 'self'; " +
		"img-src 'self' blob: data:; media-src 'self' blob:; connect-src " + src + "; " +
		"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
}

// Handler serves the single page at /, the API reference at /docs (drawn
// from /openapi.json by docs.js, so it needs nothing from the internet) and
// their assets under /ui/; connect
// names the origins besides this one that the page may send uploads to.
func Handler(connect ...string) http.Handler {
	csp := ContentSecurityPolicy(connect...)
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded directory is always there
	}
	files := http.StripPrefix("/ui/", http.FileServerFS(sub))
	index, err := fs.ReadFile(sub, "index.html")
	if err != nil {
		panic(err)
	}
	docs, err := fs.ReadFile(sub, "docs.html")
	if err != nil {
		panic(err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Permissions-Policy", "camera=(self), microphone=(), geolocation=()")
		h.Set("Cache-Control", "no-cache")
		switch r.URL.Path {
		case "/":
			h.Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write(index)
			return
		case "/docs":
			h.Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write(docs)
			return
		}
		if r.URL.Path == "/ui/" || r.URL.Path == "/ui/index.html" {
			http.Redirect(w, r, "/", http.StatusMovedPermanently)
			return
		}
		files.ServeHTTP(w, r)
	})
}
