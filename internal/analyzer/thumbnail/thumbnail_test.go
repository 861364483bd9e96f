package thumbnail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/glimpse-oss/glimpse/internal/analyzer"
	"github.com/glimpse-oss/glimpse/internal/imagedata"
	"github.com/glimpse-oss/glimpse/internal/job"
)

// memBlobs is an in-memory Blobs.
type memBlobs struct {
	mu    sync.Mutex
	blobs map[string]blob
	err   error // returned by every Put when set
}

type blob struct {
	b           []byte
	contentType string
}

func (m *memBlobs) Put(ctx context.Context, key string, b []byte, contentType string) error {
	if m.err != nil {
		return m.err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.blobs == nil {
		m.blobs = map[string]blob{}
	}
	m.blobs[key] = blob{append([]byte(nil), b...), contentType}
	return nil
}

func (m *memBlobs) get(t *testing.T, key string) blob {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.blobs[key]
	if !ok {
		t.Fatalf("no blob at %q", key)
	}
	return b
}

func TestNew(t *testing.T) {
	blobs := &memBlobs{}
	tests := []struct {
		name        string
		cfg         Config
		wantMinSide int
		wantErr     string
	}{
		{"defaults", Config{Blobs: blobs}, 320, ""},
		{"explicit", Config{Blobs: blobs, MaxSide: 160, Quality: 90}, 160, ""},
		{"no blobs", Config{}, 0, "thumbnail: config has no blob store"},
		{"negative side", Config{Blobs: blobs, MaxSide: -1}, 0, "thumbnail: max side"},
		{"quality too high", Config{Blobs: blobs, Quality: 101}, 0, "thumbnail: quality"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := New(tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("New() error = %v; want prefix %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("New() error = %v", err)
			}
			if got := a.MinSide(); got != tt.wantMinSide {
				t.Errorf("MinSide() = %d; want %d", got, tt.wantMinSide)
			}
			if got := a.Feature(); got != job.FeatureThumbnail {
				t.Errorf("Feature() = %q; want %q", got, job.FeatureThumbnail)
			}
		})
	}
}

func TestKey(t *testing.T) {
	if got, want := Key("img_0123456789abcdef01234567"), "thumbnails/img_0123456789abcdef01234567.jpg"; got != want {
		t.Errorf("Key() = %q; want %q", got, want)
	}
}

// TestPhotos makes thumbnails of real photos and checks what is stored.
func TestPhotos(t *testing.T) {
	tests := []struct {
		photo   string
		maxSide int
		minSide int // decoder MinSide, as the worker would pass
		// wantW and wantH are the exact scaled size; the stored one may
		// round either way.
		wantW, wantH float64
	}{
		{"rocket.jpg", 0, 0, 320, 213.5},              // 640×427
		{"kite.jpg", 0, 320, 320, 213.0},              // 1352×900, DCT-scaled
		{"astronaut.png", 0, 0, 320, 320},             // 512×512
		{"scream.jpg", 0, 0, 251.4, 320},              // 352×448, portrait
		{"hubble_deep_field.jpg", 160, 0, 160, 139.5}, // 1000×872
		{"scream.jpg", 1000, 0, 352, 448},             // never enlarged
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d", tt.photo, tt.maxSide), func(t *testing.T) {
			blobs := &memBlobs{}
			a, err := New(Config{Blobs: blobs, MaxSide: tt.maxSide})
			if err != nil {
				t.Fatal(err)
			}
			img := decode(t, readPhoto(t, tt.photo), tt.minSide)
			got := analyze(t, a, img).Thumbnail
			checkSize(t, got.Width, got.Height, tt.wantW, tt.wantH)
			if want := Key(img.ID); got.Key != want {
				t.Errorf("Key = %q; want %q", got.Key, want)
			}
			if got.ContentType != "image/jpeg" {
				t.Errorf("ContentType = %q; want image/jpeg", got.ContentType)
			}
			stored := blobs.get(t, got.Key)
			if stored.contentType != "image/jpeg" {
				t.Errorf("stored content type %q; want image/jpeg", stored.contentType)
			}
			thumb := decodeJPEG(t, stored.b)
			if sz := thumb.Bounds().Size(); sz != image.Pt(got.Width, got.Height) {
				t.Errorf("stored JPEG is %v; Thumbnail says %dx%d", sz, got.Width, got.Height)
			}
			// It is the photo: the mean colour survives scaling and JPEG.
			if d := colorDist(meanColor(thumb), meanColor(img.Pixels)); d > 6 {
				t.Errorf("mean colour differs by %d from the photo's", d)
			}
		})
	}
}

// checkSize fails unless w×h is within a pixel of the exact wantW×wantH.
func checkSize(t *testing.T, w, h int, wantW, wantH float64) {
	t.Helper()
	if absf(float64(w)-wantW) >= 1 || absf(float64(h)-wantH) >= 1 {
		t.Errorf("Thumbnail = %dx%d; want %.1fx%.1f ± 1", w, h, wantW, wantH)
	}
}

// TestOrientation stores rocket.jpg on its side with EXIF orientation 6: its
// thumbnail must be the upright one, portrait.
func TestOrientation(t *testing.T) {
	upright := decode(t, readPhoto(t, "rocket.jpg"), 0) // 640×427
	side := withOrientation(t, encodeJPEG(t, rotateCCW(upright.Pixels), 92), 6)

	blobs := &memBlobs{}
	a, err := New(Config{Blobs: blobs})
	if err != nil {
		t.Fatal(err)
	}
	want := analyze(t, a, upright).Thumbnail
	wantPix := decodeJPEG(t, blobs.get(t, want.Key).b)

	img := decode(t, side, 0)
	img.ID = "img_side"
	got := analyze(t, a, img).Thumbnail
	if got.Width != want.Width || got.Height != want.Height {
		t.Fatalf("Thumbnail = %dx%d; want %dx%d (upright)", got.Width, got.Height, want.Width, want.Height)
	}
	gotPix := decodeJPEG(t, blobs.get(t, got.Key).b)
	if d := meanAbsDiff(gotPix, wantPix); d > 8 {
		t.Errorf("orientation-6 thumbnail differs from the upright one by %.1f per channel", d)
	}
	// Turned the wrong way it would differ a lot more: the check has teeth.
	if d := meanAbsDiff(rotate180(gotPix), wantPix); d < 20 {
		t.Errorf("upside-down thumbnail differs by only %.1f; the comparison cannot tell", d)
	}
}

// TestPortrait checks a landscape image stored with orientation 6 gives a
// portrait thumbnail.
func TestPortrait(t *testing.T) {
	stored := image.NewRGBA(image.Rect(0, 0, 800, 600))
	side := withOrientation(t, encodeJPEG(t, stored, 80), 6)
	blobs := &memBlobs{}
	a, err := New(Config{Blobs: blobs})
	if err != nil {
		t.Fatal(err)
	}
	got := analyze(t, a, decode(t, side, 0)).Thumbnail
	checkSize(t, got.Width, got.Height, 240, 320)
}

func TestTransparentOverWhite(t *testing.T) {
	m := image.NewNRGBA(image.Rect(0, 0, 40, 20))
	for x := range 20 { // left half opaque red, right half transparent
		for y := range 20 {
			m.SetNRGBA(x, y, color.NRGBA{R: 255, A: 255})
		}
	}
	blobs := &memBlobs{}
	a, err := New(Config{Blobs: blobs})
	if err != nil {
		t.Fatal(err)
	}
	img := analyzer.NewImage("img_alpha", nil, &imagedata.Image{
		Header: imagedata.Header{Width: 40, Height: 20, Orientation: 1},
		Image:  m,
	})
	res := analyze(t, a, img)
	thumb := decodeJPEG(t, blobs.get(t, res.Thumbnail.Key).b)
	for _, tc := range []struct {
		x, y int
		want color.RGBA
	}{
		{5, 10, color.RGBA{255, 0, 0, 255}},
		{35, 10, color.RGBA{255, 255, 255, 255}},
	} {
		if got := color.RGBAModel.Convert(thumb.At(tc.x, tc.y)).(color.RGBA); colorDist(got, tc.want) > 24 {
			t.Errorf("pixel (%d, %d) = %v; want about %v", tc.x, tc.y, got, tc.want)
		}
	}
	// The shared working copy is untouched.
	if got := img.Fit(320).RGBAAt(35, 10); got.A != 0 {
		t.Errorf("shared copy pixel = %v; want transparent", got)
	}
}

func TestErrors(t *testing.T) {
	errPut := errors.New("bucket on fire")
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	pixels := &imagedata.Image{Header: imagedata.Header{Width: 8, Height: 8, Orientation: 1}, Image: image.NewRGBA(image.Rect(0, 0, 8, 8))}
	tests := []struct {
		name    string
		ctx     context.Context
		blobErr error
		id      string
		wantIs  error
		wantMsg string
	}{
		{"put fails", context.Background(), errPut, "img_a", errPut, "thumbnail: storing thumbnails/img_a.jpg"},
		{"canceled", canceled, nil, "img_a", context.Canceled, "thumbnail: "},
		{"no id", context.Background(), nil, "", nil, "thumbnail: image has no id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := New(Config{Blobs: &memBlobs{err: tt.blobErr}})
			if err != nil {
				t.Fatal(err)
			}
			var res job.Result
			err = a.Analyze(tt.ctx, analyzer.NewImage(tt.id, nil, pixels), &res)
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantMsg) {
				t.Fatalf("Analyze() error = %v; want prefix %q", err, tt.wantMsg)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("Analyze() error = %v; want errors.Is %v", err, tt.wantIs)
			}
			if res.Thumbnail != nil {
				t.Errorf("Thumbnail = %+v after an error; want nil", res.Thumbnail)
			}
		})
	}
}

func analyze(t *testing.T, a *Analyzer, img *analyzer.Image) *job.Result {
	t.Helper()
	var res job.Result
	if err := a.Analyze(context.Background(), img, &res); err != nil {
		t.Fatalf("Analyze() error = %v", err)
	}
	if res.Thumbnail == nil {
		t.Fatal("Analyze() left Thumbnail nil")
	}
	return &res
}

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

// decodeJPEG decodes b, failing unless it is a JPEG.
func decodeJPEG(tb testing.TB, b []byte) image.Image {
	tb.Helper()
	m, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		tb.Fatalf("stored thumbnail is not a JPEG: %v", err)
	}
	return m
}

func encodeJPEG(tb testing.TB, m image.Image, quality int) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: quality}); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// withOrientation sets jpg's EXIF orientation with exiftool. Without
// exiftool the test is skipped, or fails under GLIMPSE_STRICT_TESTS=1.
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

// rotateCCW returns m turned 90° counter-clockwise, which EXIF orientation 6
// turns back upright.
func rotateCCW(m image.Image) *image.RGBA {
	b := m.Bounds()
	out := image.NewRGBA(image.Rect(0, 0, b.Dy(), b.Dx()))
	for y := range b.Dy() {
		for x := range b.Dx() {
			out.Set(y, b.Dx()-1-x, m.At(b.Min.X+x, b.Min.Y+y))
		}
	}
	return out
}

func rotate180(m image.Image) *image.RGBA {
	b := m.Bounds()
	out := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	for y := range b.Dy() {
		for x := range b.Dx() {
			out.Set(b.Dx()-1-x, b.Dy()-1-y, m.At(b.Min.X+x, b.Min.Y+y))
		}
	}
	return out
}

func meanColor(m image.Image) color.RGBA {
	b := m.Bounds()
	var r, g, bl, n uint64
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			cr, cg, cb, _ := m.At(x, y).RGBA()
			r, g, bl, n = r+uint64(cr>>8), g+uint64(cg>>8), bl+uint64(cb>>8), n+1
		}
	}
	return color.RGBA{uint8(r / n), uint8(g / n), uint8(bl / n), 255}
}

// colorDist is the largest difference over the three channels.
func colorDist(a, b color.RGBA) int {
	d := func(x, y uint8) int { return max(int(x)-int(y), int(y)-int(x)) }
	return max(d(a.R, b.R), d(a.G, b.G), d(a.B, b.B))
}

// meanAbsDiff is the mean absolute difference per channel of two images of
// the same size.
func meanAbsDiff(a, b image.Image) float64 {
	r := a.Bounds()
	var sum, n float64
	for y := range r.Dy() {
		for x := range r.Dx() {
			c1 := color.RGBAModel.Convert(a.At(r.Min.X+x, r.Min.Y+y)).(color.RGBA)
			c2 := color.RGBAModel.Convert(b.At(b.Bounds().Min.X+x, b.Bounds().Min.Y+y)).(color.RGBA)
			sum += absf(float64(c1.R)-float64(c2.R)) + absf(float64(c1.G)-float64(c2.G)) + absf(float64(c1.B)-float64(c2.B))
			n += 3
		}
	}
	return sum / n
}

func absf(v float64) float64 { return max(v, -v) }
