package web

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/glimpse-oss/glimpse/internal/imagedata"
)

// Hostile inputs, sent through the real handler over fakes.

func gifBomb() []byte {
	return []byte("GIF89a\xff\xff\xff\xff\x00\x00\x00")
}

func pngBomb() []byte {
	ihdr := []byte("IHDR")
	ihdr = binary.BigEndian.AppendUint32(ihdr, 65535)
	ihdr = binary.BigEndian.AppendUint32(ihdr, 65535)
	ihdr = append(ihdr, 8, 6, 0, 0, 0)
	b := []byte("\x89PNG\r\n\x1a\n")
	b = binary.BigEndian.AppendUint32(b, 13)
	b = append(b, ihdr...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(ihdr))
}

func jpegBomb() []byte {
	b := []byte{0xFF, 0xD8, 0xFF, 0xC0, 0, 17, 8, 0xff, 0xff, 0xff, 0xff}
	b = append(b, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1)
	return append(b, 0xFF, 0xDA, 0, 12)
}

func webpBomb() []byte {
	b := []byte("RIFF")
	b = binary.LittleEndian.AppendUint32(b, 4+8+10)
	b = append(b, "WEBPVP8X"...)
	b = binary.LittleEndian.AppendUint32(b, 10)
	return append(b, 0, 0, 0, 0, 0xfe, 0xff, 0, 0xfe, 0xff, 0)
}

// framesGIF returns a 2×2 GIF of n frames.
func framesGIF(t *testing.T, n int) []byte {
	t.Helper()
	pal := color.Palette{color.Black, color.White}
	g := &gif.GIF{Image: []*image.Paletted{image.NewPaletted(image.Rect(0, 0, 2, 2), pal)}, Delay: []int{1}}
	var buf bytes.Buffer
	if err := gif.EncodeAll(&buf, g); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	head := 13
	if b[10]&0x80 != 0 {
		head += 3 << (b[10]&7 + 1)
	}
	out := append([]byte(nil), b[:head]...)
	for range n {
		out = append(out, b[head:len(b)-1]...)
	}
	return append(out, 0x3B)
}

// cost runs f and returns the bytes allocated meanwhile (TotalAlloc: an
// upper bound on the extra memory) and the wall time.
func cost(f func()) (uint64, time.Duration) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	f()
	wall := time.Since(start)
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc, wall
}

const maxExtra = 64 << 20

func TestHostileBombs(t *testing.T) {
	hs := newHarness(t, Config{Limits: imagedata.DefaultLimits()}, nil)
	for _, tt := range []struct {
		name string
		data []byte
	}{
		{"gif", gifBomb()}, {"png", pngBomb()}, {"jpeg", jpegBomb()}, {"webp", webpBomb()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var rec *httptest.ResponseRecorder
			alloc, wall := cost(func() { rec = hs.uploadRaw(t, "", "image/"+tt.name, tt.data) })
			detail := problemOf(t, rec, http.StatusUnprocessableEntity)
			if !contains(detail, "65535×65535", "the limit is 50 megapixels") {
				t.Errorf("detail = %q; want the claimed size and the limit", detail)
			}
			if alloc > maxExtra {
				t.Errorf("allocated %d bytes; want under %d", alloc, maxExtra)
			}
			t.Logf("%s bomb (%d bytes): %d in %v, %d bytes allocated", tt.name, len(tt.data), rec.Code, wall, alloc)
		})
	}
	if n := hs.store.count(); n != 0 {
		t.Errorf("%d images stored; want none", n)
	}
}

func TestHostileManyFrames(t *testing.T) {
	hs := newHarness(t, Config{Limits: imagedata.DefaultLimits()}, nil)
	b := framesGIF(t, 10_000)
	var rec *httptest.ResponseRecorder
	alloc, wall := cost(func() { rec = hs.uploadRaw(t, "", "image/gif", b) })
	detail := problemOf(t, rec, http.StatusUnprocessableEntity)
	if !contains(detail, "more than 1000 frames", "the limit is 1000 frames") {
		t.Errorf("detail = %q; want the frame limit", detail)
	}
	t.Logf("10,000-frame GIF (%d bytes): %d in %v, %d bytes allocated", len(b), rec.Code, wall, alloc)
	if alloc > maxExtra {
		t.Errorf("allocated %d bytes; want under %d", alloc, maxExtra)
	}
	// Within the limit, it is accepted.
	if rec := hs.uploadRaw(t, "", "image/gif", framesGIF(t, 1000)); rec.Code != http.StatusAccepted {
		t.Errorf("1000-frame GIF: status %d; want 202 (%s)", rec.Code, rec.Body)
	}
}

func TestHostileMultipartParts(t *testing.T) {
	hs := newHarness(t, Config{}, nil)
	png := pngBytes(t, 2, 2, 1)
	tests := []struct {
		name   string
		part   part
		status int
		want   []string
	}{
		{"10,000 fields", part{field: "note", data: []byte("x")}, http.StatusRequestEntityTooLarge,
			[]string{"too many multipart parts", "at most 64 per request", "32 files and 32 other fields"}},
		{"10,000 files", part{field: "file", filename: "a.png", data: png}, http.StatusRequestEntityTooLarge,
			[]string{"too many files", "at most 32 per request"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parts := make([]part, 10_000)
			for i := range parts {
				parts[i] = tt.part
			}
			body, ct := multipartBody(t, parts...)
			var rec *httptest.ResponseRecorder
			r := &countingReader{r: bytes.NewReader(body)}
			alloc, wall := cost(func() {
				req := httptest.NewRequest(http.MethodPost, "/v1/images", r)
				req.Header.Set("Content-Type", ct)
				rec = hs.do(req)
			})
			detail := problemOf(t, rec, tt.status)
			if !contains(detail, tt.want...) {
				t.Errorf("detail = %q; want %q", detail, tt.want)
			}
			// Refused early: only the first parts were read.
			if r.n > int64(len(body))/10 {
				t.Errorf("read %d of %d body bytes before refusing; want under a tenth", r.n, len(body))
			}
			if alloc > maxExtra {
				t.Errorf("allocated %d bytes; want under %d", alloc, maxExtra)
			}
			t.Logf("%s (%d bytes): %d after reading %d bytes, in %v, %d bytes allocated", tt.name, len(body), rec.Code, r.n, wall, alloc)
		})
	}
	if n := hs.store.count(); n != 0 {
		t.Errorf("%d images stored; want none", n)
	}
}

type countingReader struct {
	r *bytes.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// TestHostileSlowUpload: a client trickling one byte every 100 ms is cut off
// with 408 after the body deadline, while normal uploads go through.
func TestHostileSlowUpload(t *testing.T) {
	lim := testLimits
	lim.BodyTimeout, lim.BodyMinRate = 300*time.Millisecond, 1<<10
	hs := newHarness(t, Config{Limits: lim}, nil)
	ts := httptest.NewServer(hs.h)
	defer ts.Close()

	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/images HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 1000\r\n\r\n")
	start := time.Now()
	sent := make(chan int, 1)
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		n := 0
		for range tick.C {
			if _, err := conn.Write([]byte{0x89}); err != nil || n > 600 {
				break
			}
			n++
		}
		sent <- n
	}()

	// Meanwhile, normal uploads succeed.
	for i := range 5 {
		resp, err := http.Post(ts.URL+"/v1/images", "image/png", bytes.NewReader(pngBytes(t, 8, 8, byte(i))))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Errorf("normal upload %d during the trickle: status %d; want 202", i, resp.StatusCode)
		}
	}

	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the trickler's answer: %v", err)
	}
	wall := time.Since(start)
	var body bytes.Buffer
	body.ReadFrom(resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("trickler got %d; want 408 (%s)", resp.StatusCode, body.String())
	}
	if !contains(body.String(), "arrived too slowly", "the limit is 300ms plus 1s per 1 KiB received") {
		t.Errorf("detail %q; want the time limit named", body.String())
	}
	conn.Close()
	n := <-sent
	t.Logf("trickler: 408 after %v, %d bytes sent; 5 concurrent uploads got 202", wall, n)
	if n > 100 {
		t.Errorf("the trickler sent %d bytes before being cut off; want a handful", n)
	}
	if got := hs.store.count(); got != 5 {
		t.Errorf("%d images stored; want the 5 normal ones", got)
	}
}

// TestHostileSlowOversized: a trickler whose Content-Length is over the
// limit is refused before its body is read, and the server's discard of the
// unread body (done before it answers) is cut off by the same deadline.
func TestHostileSlowOversized(t *testing.T) {
	lim := testLimits
	lim.BodyTimeout, lim.BodyMinRate = 300*time.Millisecond, 1<<10
	hs := newHarness(t, Config{Limits: lim}, nil)
	ts := httptest.NewServer(hs.h)
	defer ts.Close()
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/images HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 100000\r\n\r\n\x89")
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				if _, err := conn.Write([]byte{0}); err != nil {
					return
				}
			}
		}
	}()
	defer close(done)
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	start := time.Now()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d; want 413", resp.StatusCode)
	}
	t.Logf("oversized trickler: 413 after %v", time.Since(start))
}

// TestHostilePolyglot: the bytes decide the type, whatever the name and the
// Content-Type claim; content is served back with that type and nosniff.
func TestHostilePolyglot(t *testing.T) {
	hs := newHarness(t, Config{}, nil)
	png := pngBytes(t, 4, 4, 9)
	poly := framesGIF(t, 1)
	poly[6], poly[7] = '/', '*'
	poly = append(poly, "*/=alert(1);"...)

	body, ct := multipartBody(t, part{field: "file", filename: "x.gif", data: png})
	body = bytes.Replace(body, []byte("application/octet-stream"), []byte("image/jpeg"), 1)
	cases := []struct {
		name, ct string
		body     []byte
		want     string
	}{
		{"png as image/jpeg named x.gif", ct, body, "image/png"},
		{"gif/js polyglot as text/javascript", "image/gif", poly, "image/gif"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := hs.uploadRaw(t, "?filename=x.js", c.ct, c.body)
			if rec.Code != http.StatusAccepted {
				t.Fatalf("status %d; want 202 (%s)", rec.Code, rec.Body)
			}
			var img struct {
				ID          string `json:"id"`
				ContentType string `json:"content_type"`
			}
			decode(t, rec, &img)
			if img.ContentType != c.want {
				t.Errorf("content_type = %q; want %q", img.ContentType, c.want)
			}
			got := hs.do(httptest.NewRequest(http.MethodGet, "/v1/images/"+img.ID+"/content", nil))
			if ct := got.Header().Get("Content-Type"); ct != c.want {
				t.Errorf("served as %q; want %q", ct, c.want)
			}
			if ns := got.Header().Get("X-Content-Type-Options"); ns != "nosniff" {
				t.Errorf("X-Content-Type-Options = %q; want nosniff", ns)
			}
		})
	}
	// Script after a bare GIF header is no image at all.
	rec := hs.uploadRaw(t, "", "text/javascript", []byte("GIF89a/*\x01\x00\x00\x00\x00*/=alert(1);"))
	if rec.Code < 400 || rec.Code >= 500 {
		t.Errorf("GIF header + script: status %d; want a 4xx", rec.Code)
	}
	rec = hs.uploadRaw(t, "", "image/gif", []byte("GIF89a/*\x01\x00\x00\x00\x00*/=alert(1);"))
	if d := problemOf(t, rec, http.StatusUnprocessableEntity); !strings.Contains(d, "GIF") {
		t.Errorf("detail = %q; want the GIF named", d)
	}
}

// TestHostileSlowSignedPut: a holder of a pre-signed upload URL who trickles
// the bytes is cut off with 408 after the body deadline, as on POST.
func TestHostileSlowSignedPut(t *testing.T) {
	lim := testLimits
	lim.BodyTimeout, lim.BodyMinRate = 300*time.Millisecond, 1<<10
	hs := newSignedHarness(t, Config{Limits: lim})
	ts := httptest.NewServer(hs.h)
	defer ts.Close()
	tk := hs.ticket(t, `{"filename":"slow.png","content_type":"image/png","size":1000}`)
	u, err := url.Parse(tk.UploadURL)
	if err != nil {
		t.Fatal(err)
	}

	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PUT %s HTTP/1.1\r\nHost: glimpse.test\r\nContent-Type: image/png\r\nContent-Length: 1000\r\n\r\n", u.RequestURI())
	start := time.Now()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := conn.Write([]byte{0x89}); err != nil {
					return
				}
			}
		}
	}()
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the trickler's answer: %v", err)
	}
	var body bytes.Buffer
	body.ReadFrom(resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout || !contains(body.String(), "arrived too slowly") {
		t.Fatalf("trickled signed PUT got %d %s; want 408 naming the time limit", resp.StatusCode, body.String())
	}
	t.Logf("trickled signed PUT: 408 after %v", time.Since(start).Round(time.Millisecond))
	if n := hs.store.count(); n != 0 {
		t.Errorf("%d images stored; want none", n)
	}
}
