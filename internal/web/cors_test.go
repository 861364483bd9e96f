package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCORSPreflight(t *testing.T) {
	hs := newHarness(t, Config{CORSOrigins: []string{"https://a.example", "https://B.example:8443"}, RequireKeys: true}, nil)
	preflight := func(origin, path, method string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodOptions, path, nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", method)
		req.Header.Set("Access-Control-Request-Headers", "authorization, content-type, idempotency-key")
		return hs.do(req)
	}
	for _, tc := range []struct{ origin, path, method string }{
		{"https://a.example", "/v1/images", "POST"},
		{"https://b.example:8443", "/v1/images/img_x", "DELETE"},
		{"https://a.example", "/v1/uploads/upl_x", "PUT"},
	} {
		rec := preflight(tc.origin, tc.path, tc.method)
		if rec.Code != http.StatusNoContent {
			t.Fatalf("preflight %s %s from %s = %d; want 204 (%s)", tc.method, tc.path, tc.origin, rec.Code, rec.Body)
		}
		h := rec.Header()
		if got := h.Get("Access-Control-Allow-Origin"); got != tc.origin {
			t.Errorf("Allow-Origin = %q; want %q", got, tc.origin)
		}
		for _, want := range []string{"Authorization", "X-API-Key", "Content-Type", "Idempotency-Key"} {
			if !strings.Contains(h.Get("Access-Control-Allow-Headers"), want) {
				t.Errorf("Allow-Headers %q lacks %s", h.Get("Access-Control-Allow-Headers"), want)
			}
		}
		if !strings.Contains(h.Get("Access-Control-Allow-Methods"), tc.method) {
			t.Errorf("Allow-Methods %q lacks %s", h.Get("Access-Control-Allow-Methods"), tc.method)
		}
		if h.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("Allow-Credentials is set; keys travel in headers, never cookies")
		}
		if !strings.Contains(strings.Join(h.Values("Vary"), ","), "Origin") {
			t.Errorf("Vary = %q; want Origin", h.Values("Vary"))
		}
	}
	// An origin not listed gets no CORS grant.
	for _, origin := range []string{"https://evil.example", "http://a.example", "https://a.example.evil", "null"} {
		rec := preflight(origin, "/v1/images", "POST")
		if rec.Code != http.StatusForbidden || rec.Header().Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("preflight from %s = %d, Allow-Origin %q; want 403 and none", origin, rec.Code, rec.Header().Get("Access-Control-Allow-Origin"))
		}
	}
}

func TestCORSActualRequests(t *testing.T) {
	hs := newHarness(t, Config{CORSOrigins: []string{"https://a.example"}, RateLimit: RateLimit{PerSecond: 1, Burst: 1}}, nil)
	get := func(origin, path string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		return hs.do(req)
	}
	rec := get("https://a.example", "/v1/images")
	h := rec.Header()
	if rec.Code != http.StatusOK || h.Get("Access-Control-Allow-Origin") != "https://a.example" {
		t.Fatalf("GET from an allowed origin = %d, Allow-Origin %q", rec.Code, h.Get("Access-Control-Allow-Origin"))
	}
	for _, want := range []string{"Location", "Retry-After"} {
		if !strings.Contains(h.Get("Access-Control-Expose-Headers"), want) {
			t.Errorf("Expose-Headers %q lacks %s", h.Get("Access-Control-Expose-Headers"), want)
		}
	}
	// The 429 that follows is readable by the page too, Retry-After included.
	rec = get("https://a.example", "/v1/images")
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Access-Control-Allow-Origin") != "https://a.example" {
		t.Errorf("throttled GET = %d, Allow-Origin %q; want 429 with the grant", rec.Code, rec.Header().Get("Access-Control-Allow-Origin"))
	}
	if rec := get("https://evil.example", "/v1/images"); rec.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("GET from another origin got Allow-Origin %q", rec.Header().Get("Access-Control-Allow-Origin"))
	}
	// The UI and probes are same-origin only.
	if rec := get("https://a.example", "/healthz"); rec.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("/healthz got Allow-Origin %q", rec.Header().Get("Access-Control-Allow-Origin"))
	}
}

func TestCORSOffByDefault(t *testing.T) {
	hs := newHarness(t, Config{}, nil)
	req := httptest.NewRequest(http.MethodOptions, "/v1/images", nil)
	req.Header.Set("Origin", "https://a.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	rec := hs.do(req)
	if rec.Header().Get("Access-Control-Allow-Origin") != "" || rec.Code == http.StatusNoContent {
		t.Errorf("preflight without --cors-origins = %d, Allow-Origin %q; want no grant", rec.Code, rec.Header().Get("Access-Control-Allow-Origin"))
	}
}

func TestCORSOriginsValidated(t *testing.T) {
	for _, o := range []string{"*", "a.example", "https://a.example/path", "ftp://a.example", "https://"} {
		_, err := New(Config{CORSOrigins: []string{o}}, Deps{
			Store: newFakeStore(), Blobs: newFakeBlobs(), Queue: &fakeQueue{},
			IsBlobNotFound: func(error) bool { return false },
		})
		if err == nil {
			t.Errorf("CORS origin %q accepted; want an error", o)
		}
	}
}

// The API's answers carry the same protective headers as the UI's.
func TestSecurityHeadersOnAPI(t *testing.T) {
	hs := newHarness(t, Config{}, nil)
	for _, path := range []string{"/v1/images", "/v1/images/img_nope", "/healthz"} {
		rec := hs.do(httptest.NewRequest(http.MethodGet, path, nil))
		h := rec.Header()
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") == "" || h.Get("X-Frame-Options") != "DENY" {
			t.Errorf("GET %s: nosniff %q, Referrer-Policy %q, X-Frame-Options %q", path,
				h.Get("X-Content-Type-Options"), h.Get("Referrer-Policy"), h.Get("X-Frame-Options"))
		}
	}
}
