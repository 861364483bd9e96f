package loadgen

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/glimpse-oss/glimpse/internal/job"
)

// Expected is what an image is known to hold: one line of a manifest such
// as the one `glimpse pump` writes. Empty or absent fields are not checked.
type Expected struct {
	// File is the image's path, relative to the manifest's directory.
	File    string   `json:"file"`
	QR      string   `json:"qr,omitempty"`
	TakenAt string   `json:"taken_at,omitempty"`
	Lat     *float64 `json:"lat,omitempty"`
	Lon     *float64 `json:"lon,omitempty"`
	Label   string   `json:"label,omitempty"`
}

// Features returns the features a server must compute to check e.
func (e *Expected) Features() []job.Feature {
	var fs []job.Feature
	if e.Label != "" {
		fs = append(fs, job.FeatureLabels)
	}
	if e.QR != "" {
		fs = append(fs, job.FeatureQR)
	}
	if e.TakenAt != "" || e.Lat != nil || e.Lon != nil {
		fs = append(fs, job.FeatureEXIF)
	}
	return fs
}

// Manifest is a set of expected answers read from a JSON Lines file.
type Manifest struct {
	dir     string
	entries []*Expected
	byPath  map[string]*Expected
	byBase  map[string]*Expected
}

// ReadManifest reads a manifest: one JSON object per line, each with at
// least "file".
func ReadManifest(path string) (*Manifest, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("loadgen: manifest: %w", err)
	}
	defer f.Close()
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("loadgen: manifest: %w", err)
	}
	m := &Manifest{dir: dir, byPath: map[string]*Expected{}, byBase: map[string]*Expected{}}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		e := &Expected{}
		if err := json.Unmarshal([]byte(line), e); err != nil {
			return nil, fmt.Errorf("loadgen: manifest %s line %d: %v", path, n, err)
		}
		if e.File == "" {
			return nil, fmt.Errorf("loadgen: manifest %s line %d has no \"file\"", path, n)
		}
		m.add(e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("loadgen: manifest %s: %w", path, err)
	}
	return m, nil
}

func (m *Manifest) add(e *Expected) {
	m.entries = append(m.entries, e)
	m.byPath[filepath.Clean(filepath.FromSlash(e.File))] = e
	m.byBase[filepath.Base(e.File)] = e
}

// Len is the number of entries.
func (m *Manifest) Len() int { return len(m.entries) }

// Files returns the paths of the manifest's images, in manifest order.
func (m *Manifest) Files() []string {
	out := make([]string, len(m.entries))
	for i, e := range m.entries {
		out[i] = filepath.Join(m.dir, filepath.FromSlash(e.File))
	}
	return out
}

// Features returns the features needed to check every entry.
func (m *Manifest) Features() []job.Feature {
	seen := map[job.Feature]bool{}
	var out []job.Feature
	for _, e := range m.entries {
		for _, f := range e.Features() {
			if !seen[f] {
				seen[f] = true
				out = append(out, f)
			}
		}
	}
	return out
}

// Lookup finds the expected answer for the image at path: by its path
// relative to the manifest's directory, else by its base name; nil when the
// manifest does not list it.
func (m *Manifest) Lookup(path string) *Expected {
	if abs, err := filepath.Abs(path); err == nil {
		if rel, err := filepath.Rel(m.dir, abs); err == nil {
			if e := m.byPath[rel]; e != nil {
				return e
			}
		}
	}
	return m.byBase[filepath.Base(path)]
}

// DefaultPlaceTolerance is how far, in degrees, a position may be from the
// expected one and still count as right.
const DefaultPlaceTolerance = 1e-5

// maxMisses bounds the mismatches an Accuracy lists.
const maxMisses = 20

// score compares a result with what was expected and records it in a.
func (a *Accuracy) score(name string, want *Expected, res *job.Result, tol float64) {
	a.Images++
	miss := func(field, got, want string) {
		if len(a.Misses) < maxMisses {
			a.Misses = append(a.Misses, fmt.Sprintf("%s: %s got %s, want %s", name, field, got, want))
		}
	}
	field := func(p **FieldAccuracy) *FieldAccuracy {
		if *p == nil {
			*p = &FieldAccuracy{}
		}
		return *p
	}
	if res == nil {
		res = &job.Result{}
	}
	if want.QR != "" {
		var texts []string
		ok := false
		for _, c := range res.QR {
			texts = append(texts, fmt.Sprintf("%q", c.Text))
			ok = ok || c.Text == want.QR
		}
		field(&a.QR).add(ok)
		if !ok {
			miss("qr", "["+strings.Join(texts, " ")+"]", fmt.Sprintf("%q", want.QR))
		}
	}
	var ex job.EXIF
	if res.EXIF != nil {
		ex = *res.EXIF
	}
	if want.TakenAt != "" {
		ok := sameTime(ex.TakenAt, want.TakenAt)
		field(&a.Time).add(ok)
		if !ok {
			miss("taken_at", fmt.Sprintf("%q", ex.TakenAt), fmt.Sprintf("%q", want.TakenAt))
		}
	}
	if want.Lat != nil || want.Lon != nil {
		ok := near(ex.Latitude, want.Lat, tol) && near(ex.Longitude, want.Lon, tol)
		field(&a.Place).add(ok)
		if !ok {
			miss("place", formatPlace(ex.Latitude, ex.Longitude), formatPlace(want.Lat, want.Lon))
		}
	}
	if want.Label != "" {
		got := ""
		if len(res.Labels) > 0 {
			got = res.Labels[0].Label
		}
		ok := strings.EqualFold(got, want.Label)
		field(&a.Label).add(ok)
		if !ok {
			miss("label", fmt.Sprintf("%q", got), fmt.Sprintf("%q", want.Label))
		}
	}
}

// sameTime reports whether two RFC 3339 times are the same instant written
// with the same UTC offset.
func sameTime(got, want string) bool {
	g, err1 := time.Parse(time.RFC3339Nano, got)
	w, err2 := time.Parse(time.RFC3339Nano, want)
	if err1 != nil || err2 != nil {
		return false
	}
	_, go1 := g.Zone()
	_, wo := w.Zone()
	return g.Equal(w) && go1 == wo
}

func near(got, want *float64, tol float64) bool {
	if want == nil {
		return true
	}
	return got != nil && math.Abs(*got-*want) <= tol
}

func formatPlace(lat, lon *float64) string {
	f := func(p *float64) string {
		if p == nil {
			return "none"
		}
		return fmt.Sprintf("%.7f", *p)
	}
	return f(lat) + "," + f(lon)
}
