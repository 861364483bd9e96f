package e2e

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Hostile input against a real `glimpse serve`: decompression bombs, lies
// about the type, and a client trickling its body.

func hostilePNG(t *testing.T, seed byte) []byte {
	t.Helper()
	m := image.NewNRGBA(image.Rect(0, 0, 8, 8))
	for i := range m.Pix {
		m.Pix[i] = byte(i) ^ seed
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, m); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func hostileGIF(t *testing.T) []byte {
	t.Helper()
	pal := color.Palette{color.Black, color.White}
	var buf bytes.Buffer
	if err := gif.Encode(&buf, image.NewPaletted(image.Rect(0, 0, 2, 2), pal), nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func bombs() map[string][]byte {
	ihdr := []byte("IHDR\x00\x00\xff\xff\x00\x00\xff\xff\x08\x06\x00\x00\x00")
	p := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0d")
	p = append(p, ihdr...)
	p = binary.BigEndian.AppendUint32(p, crc32.ChecksumIEEE(ihdr))
	return map[string][]byte{
		"gif":  []byte("GIF89a\xff\xff\xff\xff\x00\x00\x00"),
		"png":  p,
		"jpeg": {0xFF, 0xD8, 0xFF, 0xC0, 0, 17, 8, 0xff, 0xff, 0xff, 0xff, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1, 0xFF, 0xDA, 0, 12},
		"webp": []byte("RIFF\x16\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x00\x00\x00\x00\xfe\xff\x00\xfe\xff\x00"),
	}
}

// serverMetric reads one unlabelled sample from the server's /metrics.
func serverMetric(t *testing.T, base, name string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("/metrics has no %s", name)
	return 0
}

func TestHostileInput(t *testing.T) {
	s := startServe(t, t.TempDir(), "--body-timeout", "500ms")

	t.Run("bombs", func(t *testing.T) {
		for name, b := range bombs() {
			allocBefore := serverMetric(t, s.URL, "go_memstats_alloc_bytes_total")
			rssBefore := serverMetric(t, s.URL, "process_resident_memory_bytes")
			start := time.Now()
			var p problem
			resp := uploadRaw(t, s.URL, "", "image/"+name, b, &p)
			wall := time.Since(start)
			allocated := serverMetric(t, s.URL, "go_memstats_alloc_bytes_total") - allocBefore
			rss := serverMetric(t, s.URL, "process_resident_memory_bytes") - rssBefore
			if resp.StatusCode != 422 || !strings.Contains(p.Detail, "65535×65535") || !strings.Contains(p.Detail, "the limit is 50 megapixels") {
				t.Errorf("%s bomb: %d %q; want 422 naming the size and the limit", name, resp.StatusCode, p.Detail)
			}
			// The allocation count includes the /metrics scrape itself.
			if allocated > 64<<20 || rss > 64<<20 {
				t.Errorf("%s bomb: the server allocated %.0f bytes, RSS grew %.0f; want under 64 MB", name, allocated, rss)
			}
			t.Logf("%s bomb (%d bytes): %d in %v; server allocated %.0f bytes (incl. one /metrics scrape), RSS %+.0f", name, len(b), resp.StatusCode, wall, allocated, rss)
		}
	})

	t.Run("lies about the type", func(t *testing.T) {
		// PNG bytes, sent as image/jpeg in a part named x.gif.
		var buf bytes.Buffer
		buf.WriteString("--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.gif\"\r\nContent-Type: image/jpeg\r\n\r\n")
		buf.Write(hostilePNG(t, 1))
		buf.WriteString("\r\n--b--\r\n")
		req, _ := http.NewRequest("POST", s.URL+"/v1/images", &buf)
		req.Header.Set("Content-Type", "multipart/form-data; boundary=b")
		var img imageView
		if resp := do(t, req, &img); resp.StatusCode != 202 || img.ContentType != "image/png" {
			t.Fatalf("PNG as image/jpeg named x.gif: %d, content_type %q; want 202 and image/png", resp.StatusCode, img.ContentType)
		}
		checkServedAs(t, s.URL, img.ID, "image/png")

		// A valid GIF that is also JavaScript: kept, but only ever an image.
		poly := hostileGIF(t)
		poly[6], poly[7] = '/', '*'
		poly = append(poly, "*/=alert(1);"...)
		img = imageView{}
		if resp := uploadRaw(t, s.URL, "?filename="+url.QueryEscape("x.js"), "text/javascript", poly, nil); resp.StatusCode != 415 {
			t.Errorf("GIF/JS polyglot as text/javascript: %d; want 415 (not an image type)", resp.StatusCode)
		}
		if resp := uploadRaw(t, s.URL, "?filename=x.js", "image/gif", poly, &img); resp.StatusCode != 202 || img.ContentType != "image/gif" {
			t.Fatalf("GIF/JS polyglot: %d, content_type %q; want 202 and image/gif", resp.StatusCode, img.ContentType)
		}
		checkServedAs(t, s.URL, img.ID, "image/gif")

		// Script behind a bare GIF signature is refused.
		var p problem
		if resp := uploadRaw(t, s.URL, "", "image/gif", []byte("GIF89a/*\x01\x00\x00\x00\x00*/=alert(1);"), &p); resp.StatusCode != 422 {
			t.Errorf("GIF header + script: %d %q; want 422", resp.StatusCode, p.Detail)
		}
	})

	t.Run("trickle", func(t *testing.T) {
		conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /v1/images HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 5000\r\n\r\n")
		start := time.Now()
		var (
			wg   sync.WaitGroup
			sent int
		)
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for range tick.C {
				if _, err := conn.Write([]byte{0}); err != nil || sent >= 1000 {
					return
				}
				sent++
			}
		}()
		// Normal uploads go through meanwhile.
		for i := range 5 {
			var img imageView
			if resp := uploadRaw(t, s.URL, "", "image/png", hostilePNG(t, byte(10+i)), &img); resp.StatusCode != 202 {
				t.Errorf("upload %d during the trickle: %d; want 202", i, resp.StatusCode)
			}
		}
		conn.SetReadDeadline(time.Now().Add(time.Minute))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("no answer to the trickler: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		wall := time.Since(start)
		conn.Close()
		wg.Wait()
		if resp.StatusCode != 408 || !strings.Contains(string(body), "the limit is 500ms plus 1s per 16 KiB received") {
			t.Errorf("trickler: %d %s; want 408 naming the limit", resp.StatusCode, body)
		}
		if sent > 100 {
			t.Errorf("the trickler sent %d bytes before being cut off; want a handful", sent)
		}
		t.Logf("trickler: %d after %v and %d bytes; 5 concurrent uploads got 202", resp.StatusCode, wall, sent)
	})
}

// checkServedAs fetches an image's content and checks its type and nosniff.
func checkServedAs(t *testing.T, base, id, want string) {
	t.Helper()
	resp, err := http.Get(base + "/v1/images/" + id + "/content")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != want {
		t.Errorf("content of %s: %d %q; want 200 %q", id, resp.StatusCode, ct, want)
	}
	if ns := resp.Header.Get("X-Content-Type-Options"); ns != "nosniff" {
		t.Errorf("content of %s: X-Content-Type-Options %q; want nosniff", id, ns)
	}
}
