package web

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzUpload sends arbitrary bodies to POST /v1/images as multipart and as a
// raw image. Whatever the bytes, the answer is a 2xx or a 4xx problem: never
// a 5xx, never a panic, and a 4xx never leaves anything stored.
func FuzzUpload(f *testing.F) {
	png := pngBytes(f, 8, 8, 3)
	f.Add([]byte("--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n"+string(png)+"\r\n--xyz--\r\n"), true)
	f.Add([]byte("--xyz\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n--xyz--\r\n"), true)
	f.Add([]byte("--xyz\r\n\r\n--xyz"), true)
	f.Add(png, false)
	f.Add(png[:20], false)
	f.Add([]byte("GIF89a\xff\xff\xff\xff"), false)
	f.Fuzz(func(t *testing.T, body []byte, multipart bool) {
		hs := newHarness(t, Config{}, nil)
		req := httptest.NewRequest(http.MethodPost, "/v1/images", bytes.NewReader(body))
		if multipart {
			req.Header.Set("Content-Type", "multipart/form-data; boundary=xyz")
		} else {
			req.Header.Set("Content-Type", "image/png")
		}
		rec := hs.do(req)
		switch {
		case rec.Code >= 500:
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body.String())
		case rec.Code >= 400:
			if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("status %d with Content-Type %q; want a problem", rec.Code, ct)
			}
			if n := hs.store.count(); n != 0 {
				t.Fatalf("status %d but %d images stored", rec.Code, n)
			}
		}
	})
}
