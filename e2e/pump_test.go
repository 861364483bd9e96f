package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pumpEntry is one line of the pump's manifest.
type pumpEntry struct {
	File        string  `json:"file"`
	QR          string  `json:"qr"`
	TakenAt     string  `json:"taken_at"`
	Lat         float64 `json:"lat"`
	Lon         float64 `json:"lon"`
	Orientation int     `json:"orientation"`
}

func readManifest(t *testing.T, path string) []pumpEntry {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []pumpEntry
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var e pumpEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("manifest line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

func TestPumpDeterministic(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	for _, dir := range []string{a, b} {
		if _, stderr, code := run(t, "pump", "--count", "4", "--size", "640x480", "--seed", "9", "--out", dir); code != 0 {
			t.Fatalf("pump exit %d: %s", code, stderr)
		}
	}
	for _, name := range []string{"manifest.jsonl", "pump-000001.jpg", "pump-000004.jpg"} {
		x, err1 := os.ReadFile(filepath.Join(a, name))
		y, err2 := os.ReadFile(filepath.Join(b, name))
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs between two runs with --seed 9", name)
		}
	}
}

// TestPumpThroughAnalyzers sends the pump's photos to a real server asking
// for qr and exif, and compares what the analyzers found with the manifest:
// the URL exactly, the time exactly (with its offset), the place within
// 1e-5°.
func TestPumpThroughAnalyzers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	dir := t.TempDir()
	if _, stderr, code := run(t, "pump", "--count", "10", "--size", "1024x768", "--rotated", "0.5", "--seed", "3", "--out", dir); code != 0 {
		t.Fatalf("pump exit %d: %s", code, stderr)
	}
	entries := readManifest(t, filepath.Join(dir, "manifest.jsonl"))
	if len(entries) != 10 {
		t.Fatalf("manifest has %d entries; want 10", len(entries))
	}
	s := startServe(t, t.TempDir())

	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.File))
		if err != nil {
			t.Fatal(err)
		}
		var img struct {
			Status string `json:"status"`
			Error  string `json:"error"`
			Result *struct {
				QR []struct {
					Text string `json:"text"`
				} `json:"qr"`
				EXIF *struct {
					TakenAt   string   `json:"taken_at"`
					Latitude  *float64 `json:"latitude"`
					Longitude *float64 `json:"longitude"`
				} `json:"exif"`
				Errors map[string]string `json:"errors"`
			} `json:"result"`
		}
		resp := uploadRaw(t, s.URL, "?features=qr,exif&wait=60s&filename="+e.File, "image/jpeg", b, &img)
		if resp.StatusCode == http.StatusBadRequest {
			var p problem
			json.NewDecoder(resp.Body).Decode(&p)
			t.Fatalf("the server refuses features=qr,exif (are the qr and exif analyzers in?): %s", p.Detail)
		}
		if resp.StatusCode != http.StatusOK || img.Status != "done" || img.Result == nil {
			t.Fatalf("%s: %d, status %q, error %q", e.File, resp.StatusCode, img.Status, img.Error)
		}
		r := img.Result
		for _, f := range []string{"qr", "exif"} {
			if msg := r.Errors[f]; strings.Contains(msg, "no analyzer") {
				t.Fatalf("the server has no %s analyzer yet (result.errors.%s = %q); this test needs the qr and exif analyzers", f, f, msg)
			}
		}
		var texts []string
		for _, c := range r.QR {
			texts = append(texts, c.Text)
		}
		if len(texts) != 1 || texts[0] != e.QR {
			t.Errorf("%s (orientation %d): qr %q; want [%q] (errors %v)", e.File, e.Orientation, texts, e.QR, r.Errors)
		}
		if r.EXIF == nil {
			t.Errorf("%s: no exif (errors %v)", e.File, r.Errors)
			continue
		}
		got, err1 := time.Parse(time.RFC3339, r.EXIF.TakenAt)
		want, _ := time.Parse(time.RFC3339, e.TakenAt)
		_, gotOff := got.Zone()
		_, wantOff := want.Zone()
		if err1 != nil || !got.Equal(want) || gotOff != wantOff {
			t.Errorf("%s: taken_at %q; want %q", e.File, r.EXIF.TakenAt, e.TakenAt)
		}
		if r.EXIF.Latitude == nil || r.EXIF.Longitude == nil ||
			math.Abs(*r.EXIF.Latitude-e.Lat) > 1e-5 || math.Abs(*r.EXIF.Longitude-e.Lon) > 1e-5 {
			t.Errorf("%s: position %v,%v; want %.7f,%.7f within 1e-5°", e.File, r.EXIF.Latitude, r.EXIF.Longitude, e.Lat, e.Lon)
		}
	}

	// The same check through `load --manifest`, which reports accuracy.
	stdout, stderr, code := run(t, "load", "--url", s.URL, "--manifest", filepath.Join(dir, "manifest.jsonl"),
		"--check", "errors=0,accuracy_qr=1,accuracy_time=1,accuracy_place=1")
	if code != 0 {
		t.Errorf("load --manifest: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "accuracy against the manifest (10 images)") {
		t.Errorf("load --manifest printed no accuracy:\n%s", stdout)
	}
}

// TestPumpTo sends photos straight from the pump to a server.
func TestPumpTo(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	s := startServe(t, t.TempDir())
	stdout, stderr, code := run(t, "pump", "--count", "5", "--size", "640x480", "--to", s.URL, "--rate", "20",
		"--features", "labels", "--json", "--check", "errors=0")
	if code != 0 {
		t.Fatalf("pump --to: exit %d\n%s\n%s", code, stdout, stderr)
	}
	var sum loadSummary
	lastJSON(t, stdout, &sum)
	if sum.Sent != 5 || sum.Done != 5 {
		t.Errorf("pump --to: sent %d done %d; want 5 and 5", sum.Sent, sum.Done)
	}
}
