package classify

import (
	"context"
	"errors"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/glimpse-oss/glimpse/internal/analyzer/analyzertest"
	"github.com/glimpse-oss/glimpse/internal/models"
)

// newTestClassifier initialises ONNX Runtime, locates the default model and
// returns a Classifier closed at the end of the test.
func newTestClassifier(tb testing.TB, topK int) *Classifier {
	tb.Helper()
	analyzertest.Need(tb, "onnx runtime", InitRuntime(""))
	m, err := models.Locate("")
	analyzertest.Need(tb, "model", err)
	c, err := New(Config{Model: m, TopK: topK})
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// photo decodes a test photo from .deps/testdata.
func photo(tb testing.TB, name string) image.Image {
	tb.Helper()
	dir := ""
	for d, _ := os.Getwd(); ; d = filepath.Dir(d) {
		if fi, err := os.Stat(filepath.Join(d, ".deps", "testdata")); err == nil && fi.IsDir() {
			dir = filepath.Join(d, ".deps", "testdata")
			break
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	f, err := os.Open(filepath.Join(dir, name))
	analyzertest.Need(tb, "test photo "+name+" (run scripts/setup.sh)", err)
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		tb.Fatalf("decoding %s: %v", name, err)
	}
	return img
}

func TestClassifyPhotos(t *testing.T) {
	c := newTestClassifier(t, 5)
	tests := []struct {
		photo string
		want  string
	}{
		{"chelsea.png", "Egyptian cat"},
		{"coffee.png", "espresso"},
	}
	for _, tt := range tests {
		t.Run(tt.photo, func(t *testing.T) {
			labels, err := c.Classify(context.Background(), photo(t, tt.photo))
			if err != nil {
				t.Fatalf("Classify: %v", err)
			}
			if len(labels) != 5 {
				t.Fatalf("got %d labels, want 5", len(labels))
			}
			if labels[0].Label != tt.want {
				t.Errorf("top-1 is %q (%.3f), want %q; all: %v", labels[0].Label, labels[0].Score, tt.want, labels)
			}
			sum := 0.0
			for i, l := range labels {
				if l.Score < 0 || l.Score > 1 {
					t.Errorf("label %d score %v outside [0,1]", i, l.Score)
				}
				if i > 0 && l.Score > labels[i-1].Score {
					t.Errorf("label %d score %v above label %d score %v", i, l.Score, i-1, labels[i-1].Score)
				}
				sum += l.Score
			}
			if sum > 1+1e-5 {
				t.Errorf("scores sum to %v, want at most 1", sum)
			}
			t.Logf("%s: %v", tt.photo, labels)
		})
	}
}

func TestClassifyTopK(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 300, 260))
	for _, k := range []int{1, 3, 10} {
		t.Run("", func(t *testing.T) {
			c := newTestClassifier(t, k)
			labels, err := c.Classify(context.Background(), img)
			if err != nil {
				t.Fatalf("Classify: %v", err)
			}
			if len(labels) != k {
				t.Errorf("got %d labels, want %d", len(labels), k)
			}
		})
	}
}

func TestClassifyErrors(t *testing.T) {
	c := newTestClassifier(t, 5)
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		img  image.Image
		want error
	}{
		{"empty image", context.Background(), image.NewRGBA(image.Rect(0, 0, 0, 10)), ErrEmptyImage},
		{"nil image", context.Background(), nil, ErrEmptyImage},
		{"canceled", canceled, image.NewRGBA(image.Rect(0, 0, 10, 10)), context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Classify(tt.ctx, tt.img)
			if !errors.Is(err, tt.want) {
				t.Errorf("got error %v, want %v", err, tt.want)
			}
		})
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := c.Classify(context.Background(), image.NewRGBA(image.Rect(0, 0, 10, 10))); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close got %v, want %v", err, ErrClosed)
	}
}

func TestNewChecksModel(t *testing.T) {
	analyzertest.Need(t, "onnx runtime", InitRuntime(""))
	m, err := models.Locate("")
	analyzertest.Need(t, "model", err)
	tests := []struct {
		name   string
		modify func(*models.Model)
	}{
		{"wrong input name", func(m *models.Model) { m.Spec.Input = "data" }},
		{"wrong output name", func(m *models.Model) { m.Spec.Output = "prob" }},
		{"wrong size", func(m *models.Model) { m.Spec.Size = 299; m.Spec.ResizeShorter = 320 }},
		{"wrong label count", func(m *models.Model) { m.Labels = m.Labels[:999] }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mm := *m
			tt.modify(&mm)
			c, err := New(Config{Model: &mm})
			if err == nil {
				c.Close()
			}
			if !errors.Is(err, ErrBadModel) {
				t.Errorf("got error %v, want %v", err, ErrBadModel)
			}
		})
	}
}

func TestInitRuntimeRepeated(t *testing.T) {
	first := InitRuntime("")
	for range 3 {
		if err := InitRuntime("/nonexistent/libonnxruntime.so.1"); err != first {
			t.Errorf("got %v, want the first result %v", err, first)
		}
	}
}

func TestMinSideAndName(t *testing.T) {
	c := newTestClassifier(t, 5)
	if got := c.MinSide(); got != 256 {
		t.Errorf("MinSide() = %d, want 256", got)
	}
	if got := c.Name(); got != "mobilenetv2-12-int8" {
		t.Errorf("Name() = %q, want %q", got, "mobilenetv2-12-int8")
	}
}

func TestSoftmaxTopK(t *testing.T) {
	logits := []float32{1, 3, 2, 3, -1}
	probs := make([]float32, len(logits))
	softmax(logits, probs)
	var sum float64
	for _, p := range probs {
		sum += float64(p)
	}
	if math.Abs(sum-1) > 1e-6 {
		t.Errorf("softmax sums to %v, want 1", sum)
	}
	tests := []struct {
		k    int
		want []int
	}{
		{1, []int{1}},
		{2, []int{1, 3}},
		{4, []int{1, 3, 2, 0}},
		{5, []int{1, 3, 2, 0, 4}},
	}
	for _, tt := range tests {
		t.Run("", func(t *testing.T) {
			got := topK(probs, tt.k, make([]int, 0, tt.k+1))
			if !equalInts(got, tt.want) {
				t.Errorf("topK(k=%d) = %v, want %v", tt.k, got, tt.want)
			}
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// generic hides an image's concrete type so Preprocess takes its At path.
type generic struct{ image.Image }

// testImage returns a smooth, colourful opaque RGBA image.
func testImage(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetRGBA(x, y, color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), uint8((x + y) % 256), 255})
		}
	}
	return img
}

func TestPreprocessFastPaths(t *testing.T) {
	spec := models.Default()
	src := testImage(333, 250)
	nrgba := image.NewNRGBA(src.Bounds())
	draw.Draw(nrgba, src.Bounds(), src, image.Point{}, draw.Src)
	gray := image.NewGray(src.Bounds())
	draw.Draw(gray, src.Bounds(), src, image.Point{}, draw.Src)
	// An offset sub-image checks that Bounds().Min is honoured.
	big := testImage(400, 300)
	sub := big.SubImage(image.Rect(17, 9, 350, 259)).(*image.RGBA)

	tests := []struct {
		name string
		img  image.Image
	}{
		{"RGBA", src},
		{"NRGBA", nrgba},
		{"Gray", gray},
		{"RGBA sub-image", sub},
		{"NRGBA translucent", translucent(src)},
	}
	for _, r := range []image.YCbCrSubsampleRatio{
		image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422, image.YCbCrSubsampleRatio420,
		image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410,
	} {
		tests = append(tests, struct {
			name string
			img  image.Image
		}{"YCbCr " + r.String(), toYCbCr(src, r)})
	}
	for _, layout := range []string{models.LayoutNCHW, models.LayoutNHWC} {
		spec.Layout = layout
		for _, tt := range tests {
			t.Run(layout+" "+tt.name, func(t *testing.T) {
				n := 3 * spec.Size * spec.Size
				got, want := make([]float32, n), make([]float32, n)
				Preprocess(tt.img, spec, got)
				Preprocess(generic{tt.img}, spec, want)
				for i := range got {
					if d := math.Abs(float64(got[i] - want[i])); d > 0.03 {
						t.Fatalf("value %d: got %v, want %v (generic path)", i, got[i], want[i])
					}
				}
			})
		}
	}
}

func translucent(src *image.RGBA) *image.NRGBA {
	m := image.NewNRGBA(src.Bounds())
	draw.Draw(m, m.Bounds(), src, image.Point{}, draw.Src)
	for i := 3; i < len(m.Pix); i += 4 {
		m.Pix[i] = uint8(i / 4 % 256)
	}
	return m
}

func toYCbCr(src *image.RGBA, r image.YCbCrSubsampleRatio) *image.YCbCr {
	b := src.Bounds()
	m := image.NewYCbCr(b, r)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := src.RGBAAt(x, y)
			yy, cb, cr := color.RGBToYCbCr(c.R, c.G, c.B)
			m.Y[m.YOffset(x, y)] = yy
			m.Cb[m.COffset(x, y)] = cb
			m.Cr[m.COffset(x, y)] = cr
		}
	}
	return m
}

func TestPreprocessValues(t *testing.T) {
	spec := models.Default()
	tests := []struct {
		name string
		w, h int
		c    color.RGBA
	}{
		{"black landscape", 640, 480, color.RGBA{0, 0, 0, 255}},
		{"white portrait", 100, 400, color.RGBA{255, 255, 255, 255}},
		{"grey upscaled", 20, 30, color.RGBA{128, 128, 128, 255}},
		{"exact size", 224, 224, color.RGBA{10, 200, 90, 255}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := image.NewRGBA(image.Rect(0, 0, tt.w, tt.h))
			draw.Draw(img, img.Bounds(), image.NewUniform(tt.c), image.Point{}, draw.Src)
			dst := make([]float32, 3*spec.Size*spec.Size)
			Preprocess(img, spec, dst)
			plane := spec.Size * spec.Size
			for c, v := range []uint8{tt.c.R, tt.c.G, tt.c.B} {
				want := (float32(v)/255 - spec.Mean[c]) / spec.Std[c]
				for i := c * plane; i < (c+1)*plane; i++ {
					if d := math.Abs(float64(dst[i] - want)); d > 1e-4 {
						t.Fatalf("channel %d value %d: got %v, want %v", c, i-c*plane, dst[i], want)
					}
				}
			}
		})
	}
}

func TestPreprocessCrop(t *testing.T) {
	// Left third red, the rest blue: after resizing 768x256 to 768x256 (no
	// scaling) the centre crop [272,496) is all blue.
	spec := models.Default()
	img := image.NewRGBA(image.Rect(0, 0, 768, 256))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.RGBA{0, 0, 255, 255}), image.Point{}, draw.Src)
	draw.Draw(img, image.Rect(0, 0, 256, 256), image.NewUniform(color.RGBA{255, 0, 0, 255}), image.Point{}, draw.Src)
	dst := make([]float32, 3*spec.Size*spec.Size)
	Preprocess(img, spec, dst)
	wantR := (0 - spec.Mean[0]) / spec.Std[0]
	for i := range spec.Size * spec.Size {
		if d := math.Abs(float64(dst[i] - wantR)); d > 1e-4 {
			t.Fatalf("red at %d: got %v, want %v", i, dst[i], wantR)
		}
	}
}

func TestPreprocessNoAllocs(t *testing.T) {
	spec := models.Default()
	dst := make([]float32, 3*spec.Size*spec.Size)
	tests := []struct {
		name string
		img  image.Image
	}{
		{"RGBA", testImage(500, 400)},
		{"YCbCr", toYCbCr(testImage(500, 400), image.YCbCrSubsampleRatio420)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			Preprocess(tt.img, spec, dst)
			if got := testing.AllocsPerRun(20, func() { Preprocess(tt.img, spec, dst) }); got > 0 {
				t.Errorf("got %v allocations per call, want 0", got)
			}
		})
	}
}
