// Package testphotos gives tests the real photos scripts/setup.sh extracts
// from Debian packages into .deps/testdata. When they are absent a test is
// skipped, or fails when GLIMPSE_STRICT_TESTS=1 (as `make test` sets).
package testphotos

import (
	"image"
	"image/draw"
	_ "image/jpeg" // the photos are JPEG and PNG
	_ "image/png"
	"os"
	"path/filepath"
	"testing"
)

// Names are the photos of .deps/testdata.
var Names = []string{
	"astronaut.png", "chelsea.png", "coffee.png", "motorcycle_left.png",
	"dog.jpg", "eagle.jpg", "giraffe.jpg", "horses.jpg", "hubble_deep_field.jpg",
	"kite.jpg", "person.jpg", "rocket.jpg", "scream.jpg",
}

// Dir walks up from the working directory to .deps/testdata.
func Dir(tb testing.TB) string {
	tb.Helper()
	for d, _ := os.Getwd(); ; d = filepath.Dir(d) {
		dir := filepath.Join(d, ".deps", "testdata")
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			return dir
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	if os.Getenv("GLIMPSE_STRICT_TESTS") == "1" {
		tb.Fatal(".deps/testdata not found (run scripts/setup.sh)")
	}
	tb.Skip(".deps/testdata not found (run scripts/setup.sh)")
	return ""
}

// Bytes reads a photo's encoded bytes.
func Bytes(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(Dir(tb), name))
	if err != nil {
		tb.Fatalf("reading %s: %v", name, err)
	}
	return b
}

// RGBA decodes a photo into an RGBA image with its origin at (0,0).
func RGBA(tb testing.TB, name string) *image.RGBA {
	tb.Helper()
	f, err := os.Open(filepath.Join(Dir(tb), name))
	if err != nil {
		tb.Fatalf("opening %s: %v", name, err)
	}
	defer f.Close()
	m, _, err := image.Decode(f)
	if err != nil {
		tb.Fatalf("decoding %s: %v", name, err)
	}
	return ToRGBA(m)
}

// ToRGBA copies m into a new RGBA image with its origin at (0,0).
func ToRGBA(m image.Image) *image.RGBA {
	b := m.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(dst, dst.Bounds(), m, b.Min, draw.Src)
	return dst
}
