package blobstore

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sign signs key with o, skipping the test on stores that cannot sign.
func sign(t *testing.T, s *Store, key string, o SignOptions) string {
	t.Helper()
	u, err := s.SignURL(context.Background(), key, o)
	if errors.Is(err, ErrNoSigning) {
		t.Skip("this store cannot sign URLs")
	}
	if err != nil {
		t.Fatalf("SignURL(%q, %+v): %v", key, o, err)
	}
	return u
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

// do sends one request to a signed URL and returns the status and body.
func do(t *testing.T, method, rawURL, contentType string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, rawURL, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("NewRequest(%s %s): %v", method, rawURL, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, rawURL, err)
	}
	return resp.StatusCode, b
}

// signatureParams are the query parameters holding the signature and the
// expiry in S3 (SigV4) and fileblob signed URLs.
var (
	signatureParams = []string{"X-Amz-Signature", "signature"}
	expiryParams    = []string{"X-Amz-Expires", "expiry"}
)

// setParam rewrites the first of names present in rawURL's query with f.
func setParam(t *testing.T, rawURL string, names []string, f func(string) string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("parse %q: %v", rawURL, err)
	}
	q := u.Query()
	for _, n := range names {
		if v := q.Get(n); v != "" {
			q.Set(n, f(v))
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	t.Fatalf("signed url %q has none of %v", rawURL, names)
	return ""
}

func testSignedGet(t *testing.T, s *Store) {
	ctx := context.Background()
	want := []byte("\xff\xd8\xff signed get")
	if err := s.Put(ctx, "signed/get", want, "image/jpeg"); err != nil {
		t.Fatalf("Put: %v", err)
	}
	u := sign(t, s, "signed/get", SignOptions{Method: http.MethodGet, Expiry: 10 * time.Minute})
	if code, got := do(t, http.MethodGet, u, "", nil); code != http.StatusOK || !bytes.Equal(got, want) {
		t.Errorf("GET signed url = %d, %q; want 200, %q", code, got, want)
	}
	if code, _ := do(t, http.MethodPut, u, "image/jpeg", []byte("overwrite")); code != http.StatusForbidden {
		t.Errorf("PUT to a GET url = %d; want 403", code)
	}
	if got, _ := s.Get(ctx, "signed/get"); !bytes.Equal(got, want) {
		t.Errorf("after refused PUT Get = %q; want %q", got, want)
	}
	// The old SignedURL signature still works.
	u2, err := s.SignedURL(ctx, "signed/get", http.MethodGet, time.Minute)
	if err != nil {
		t.Fatalf("SignedURL: %v", err)
	}
	if code, _ := do(t, http.MethodGet, u2, "", nil); code != http.StatusOK {
		t.Errorf("GET SignedURL = %d; want 200", code)
	}
}

func testSignedPut(t *testing.T, s *Store) {
	ctx := context.Background()
	body := []byte("\x89PNG\r\n\x1a\n signed put")
	u := sign(t, s, "signed/put", SignOptions{Method: http.MethodPut, Expiry: 10 * time.Minute, ContentType: "image/png"})
	for _, ct := range []string{"image/jpeg", "", "image/png; charset=x"} {
		if code, b := do(t, http.MethodPut, u, ct, body); code != http.StatusForbidden {
			t.Errorf("PUT with Content-Type %q = %d (%s); want 403", ct, code, b)
		}
	}
	if ok, _ := s.Exists(ctx, "signed/put"); ok {
		t.Fatalf("a refused PUT stored the blob")
	}
	if code, b := do(t, http.MethodPut, u, "image/png", body); code != http.StatusOK {
		t.Fatalf("PUT with the signed Content-Type = %d (%s); want 200", code, b)
	}
	got, err := s.Get(ctx, "signed/put")
	if err != nil || !bytes.Equal(got, body) {
		t.Errorf("Get after signed PUT = %q, %v; want %q", got, err, body)
	}
	if a, err := s.Stat(ctx, "signed/put"); err != nil || a.ContentType != "image/png" {
		t.Errorf("Stat after signed PUT = %+v, %v; want image/png", a, err)
	}
	if code, _ := do(t, http.MethodGet, u, "", nil); code != http.StatusForbidden {
		t.Errorf("GET with a PUT url = %d; want 403", code)
	}

	// Without a bound type any Content-Type goes.
	free := sign(t, s, "signed/free", SignOptions{Method: http.MethodPut, Expiry: 10 * time.Minute})
	if code, b := do(t, http.MethodPut, free, "text/plain", []byte("free")); code != http.StatusOK {
		t.Errorf("PUT to an unbound url = %d (%s); want 200", code, b)
	}
}

func testSignedTampered(t *testing.T, s *Store) {
	ctx := context.Background()
	for _, k := range []string{"signed/tamper-a", "signed/tamper-b"} {
		if err := s.Put(ctx, k, []byte(k), "text/plain"); err != nil {
			t.Fatalf("Put: %v", err)
		}
	}
	u := sign(t, s, "signed/tamper-a", SignOptions{Method: http.MethodGet, Expiry: 10 * time.Minute})
	flip := func(v string) string {
		if v[0] == 'a' {
			return "b" + v[1:]
		}
		return "a" + v[1:]
	}
	tests := []struct {
		name string
		url  string
	}{
		{"signature", setParam(t, u, signatureParams, flip)},
		{"expiry", setParam(t, u, expiryParams, func(v string) string {
			n, _ := strconv.Atoi(v)
			return strconv.Itoa(n + 3600)
		})},
		{"key", strings.Replace(u, "tamper-a", "tamper-b", 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.url == u {
				t.Fatalf("tampering left the url unchanged: %s", u)
			}
			if code, b := do(t, http.MethodGet, tt.url, "", nil); code != http.StatusForbidden {
				t.Errorf("GET tampered url = %d (%s); want 403", code, b)
			}
		})
	}
	if code, _ := do(t, http.MethodGet, u, "", nil); code != http.StatusOK {
		t.Errorf("GET untampered url = %d; want 200", code)
	}
}

func testSignedExpired(t *testing.T, s *Store) {
	ctx := context.Background()
	if err := s.Put(ctx, "signed/expire", []byte("soon gone"), "text/plain"); err != nil {
		t.Fatalf("Put: %v", err)
	}
	get := sign(t, s, "signed/expire", SignOptions{Method: http.MethodGet, Expiry: time.Second})
	put := sign(t, s, "signed/expire-put", SignOptions{Method: http.MethodPut, Expiry: time.Second, ContentType: "text/plain"})
	// Poll until the server refuses the URLs; the deadline only bounds a
	// broken server, it asserts nothing about time.
	deadline := time.Now().Add(60 * time.Second)
	for _, tt := range []struct{ method, url, ct string }{
		{http.MethodGet, get, ""},
		{http.MethodPut, put, "text/plain"},
	} {
		for {
			code, b := do(t, tt.method, tt.url, tt.ct, []byte("late"))
			if code == http.StatusForbidden {
				break
			}
			if code != http.StatusOK {
				t.Fatalf("%s before expiry = %d (%s); want 200 then 403", tt.method, code, b)
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s with a 1s url still %d after 60s; want 403", tt.method, code)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func testSignOptions(t *testing.T, s *Store) {
	ctx := context.Background()
	sign(t, s, "signed/opts", SignOptions{}) // skips stores that cannot sign
	tests := []struct {
		name string
		key  string
		o    SignOptions
		want error // nil: any error
	}{
		{"bad key", "../x", SignOptions{Method: http.MethodGet}, ErrBadKey},
		{"delete", "signed/opts", SignOptions{Method: http.MethodDelete}, nil},
		{"type on get", "signed/opts", SignOptions{Method: http.MethodGet, ContentType: "image/png"}, nil},
		{"negative expiry", "signed/opts", SignOptions{Method: http.MethodGet, Expiry: -time.Second}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := s.SignURL(ctx, tt.key, tt.o)
			if err == nil {
				t.Fatalf("SignURL(%q, %+v) = %q; want an error", tt.key, tt.o, u)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("SignURL(%q, %+v) = %v; want %v", tt.key, tt.o, err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "blobstore: ") {
				t.Errorf("SignURL error %q lacks the package prefix", err)
			}
		})
	}
}
