package faces

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/glimpse-oss/glimpse/internal/analyzer"
	"github.com/glimpse-oss/glimpse/internal/imagedata"
)

// photoDir returns .deps/testdata, found by walking up from the working
// directory. Without it the test is skipped, or fails under
// GLIMPSE_STRICT_TESTS=1.
func photoDir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		p := filepath.Join(dir, ".deps", "testdata")
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	if os.Getenv("GLIMPSE_STRICT_TESTS") == "1" {
		tb.Fatal(".deps/testdata not found; run scripts/setup.sh")
	}
	tb.Skip(".deps/testdata not found; run scripts/setup.sh")
	return ""
}

// readPhoto returns the bytes of a photo in .deps/testdata.
func readPhoto(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(photoDir(tb), name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// decode decodes b as the worker does and wraps it for the analyzers.
func decode(tb testing.TB, b []byte, minSide int) *analyzer.Image {
	tb.Helper()
	dec, err := imagedata.Decode(b, imagedata.DefaultLimits(), imagedata.DecodeOptions{MinSide: minSide})
	if err != nil {
		tb.Fatalf("imagedata.Decode() error = %v", err)
	}
	return analyzer.NewImage("img_test", b, dec)
}

// decodePixels decodes a photo to pixels in display orientation.
func decodePixels(tb testing.TB, name string) image.Image {
	tb.Helper()
	return decode(tb, readPhoto(tb, name), 0).Pixels
}

// encodeJPEG encodes m at the given quality.
func encodeJPEG(tb testing.TB, m image.Image, quality int) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: quality}); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// rotateCCW returns m turned 90° counter-clockwise: what a camera held on its
// side stores, which EXIF orientation 6 turns back upright.
func rotateCCW(m image.Image) *image.RGBA {
	b := m.Bounds()
	out := image.NewRGBA(image.Rect(0, 0, b.Dy(), b.Dx()))
	for y := range b.Dy() {
		for x := range b.Dx() {
			// Display (x, y) is stored at (y, w-1-x).
			out.Set(y, b.Dx()-1-x, m.At(b.Min.X+x, b.Min.Y+y))
		}
	}
	return out
}

// onCanvas draws m scaled to side×side at the left of a w×h mid-grey canvas,
// so that rotation changes the image's aspect.
func onCanvas(m image.Image, w, h, side int) *image.RGBA {
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(out, out.Bounds(), image.NewUniform(color.Gray{Y: 128}), image.Point{}, draw.Src)
	scaled := image.NewRGBA(image.Rect(0, 0, side, side))
	scaleInto(scaled, m)
	draw.Draw(out, scaled.Bounds(), scaled, image.Point{}, draw.Src)
	return out
}

// scaleInto fills dst with src scaled by nearest neighbour: crude but
// independent of the code under test.
func scaleInto(dst *image.RGBA, src image.Image) {
	sb, db := src.Bounds(), dst.Bounds()
	for y := range db.Dy() {
		for x := range db.Dx() {
			dst.Set(db.Min.X+x, db.Min.Y+y, src.At(sb.Min.X+x*sb.Dx()/db.Dx(), sb.Min.Y+y*sb.Dy()/db.Dy()))
		}
	}
}

// withOrientation writes jpg to a file, sets its EXIF orientation with
// exiftool and returns the result. Without exiftool the test is skipped, or
// fails under GLIMPSE_STRICT_TESTS=1.
func withOrientation(tb testing.TB, jpg []byte, o int) []byte {
	tb.Helper()
	exiftool, err := exec.LookPath("exiftool")
	if err != nil {
		if os.Getenv("GLIMPSE_STRICT_TESTS") == "1" {
			tb.Fatal("exiftool not found")
		}
		tb.Skip("exiftool not found")
	}
	p := filepath.Join(tb.TempDir(), "o.jpg")
	if err := os.WriteFile(p, jpg, 0o600); err != nil {
		tb.Fatal(err)
	}
	out, err := exec.Command(exiftool, "-q", "-overwrite_original", "-n", fmt.Sprintf("-Orientation=%d", o), p).CombinedOutput()
	if err != nil {
		tb.Fatalf("exiftool: %v: %s", err, out)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
