package faces

import (
	"context"
	"errors"
	"image"
	"strings"
	"testing"

	pigo "github.com/esimov/pigo/core"

	"github.com/glimpse-oss/glimpse/internal/analyzer"
	"github.com/glimpse-oss/glimpse/internal/imagedata"
	"github.com/glimpse-oss/glimpse/internal/job"
)

// astronautFace is where the face is in astronaut.png (512×512), judged by
// eye: centred between the eyes and the mouth, about 100 px across.
var astronautFace = struct{ cx, cy, side float64 }{222, 112, 100}

func newAnalyzer(t *testing.T) *Analyzer {
	t.Helper()
	a, err := New(Config{})
	if err != nil {
		t.Fatalf("New() error = %v", err)
	}
	return a
}

func analyze(t *testing.T, a *Analyzer, img *analyzer.Image) []job.Face {
	t.Helper()
	var res job.Result
	if err := a.Analyze(context.Background(), img, &res); err != nil {
		t.Fatalf("Analyze() error = %v", err)
	}
	if res.Faces == nil {
		t.Fatal("Analyze() left Faces nil; want a non-nil slice")
	}
	return res.Faces
}

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"zero", Config{}, ""},
		{"explicit", Config{MinConfidence: 5, MinFace: 0.2}, ""},
		{"negative confidence", Config{MinConfidence: -1}, "faces: min confidence"},
		{"face too big", Config{MinFace: 1.5}, "faces: min face"},
		{"negative face", Config{MinFace: -0.1}, "faces: min face"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := New(tt.cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New(%+v) error = %v; want nil", tt.cfg, err)
				}
				if got := a.Feature(); got != job.FeatureFaces {
					t.Errorf("Feature() = %q; want %q", got, job.FeatureFaces)
				}
				if got := a.MinSide(); got != 640 {
					t.Errorf("MinSide() = %d; want 640", got)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Fatalf("New(%+v) error = %v; want prefix %q", tt.cfg, err, tt.wantErr)
			}
		})
	}
}

// TestAstronaut checks the one face of astronaut.png is found, once, where it
// is: as is, and shrunk so the face is about 25 px, near the smallest size
// searched for.
func TestAstronaut(t *testing.T) {
	a := newAnalyzer(t)
	astronaut := decodePixels(t, "astronaut.png")
	tests := []struct {
		name  string
		img   image.Image
		scale float64 // image pixels per astronaut.png pixel
	}{
		{"as is", astronaut, 1},
		{"small", onCanvas(astronaut, 640, 480, 128), 0.25},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := analyzer.NewImage("img_test", nil, &imagedata.Image{
				Header: imagedata.Header{Width: tt.img.Bounds().Dx(), Height: tt.img.Bounds().Dy(), Orientation: 1},
				Image:  tt.img,
			})
			faces := analyze(t, a, img)
			if len(faces) != 1 {
				t.Fatalf("got %d faces %+v; want 1", len(faces), faces)
			}
			checkBox(t, faces[0], astronautFace.cx, astronautFace.cy, astronautFace.side, tt.scale)
			if faces[0].Confidence < DefaultMinConfidence {
				t.Errorf("Confidence = %v; want >= %v", faces[0].Confidence, DefaultMinConfidence)
			}
		})
	}
}

// A face under 4% of a large photo's shorter side is below the cascade's
// reach on the default working copy; a smaller MinFace searches a larger
// copy and finds it, in the photo's own pixels.
func TestSmallFaceInLargePhoto(t *testing.T) {
	astronaut := decodePixels(t, "astronaut.png")
	const side = 300 // astronaut.png drawn 300 px wide: its face is about 59 px
	big := onCanvas(astronaut, 3000, 2000, side)
	img := func() *analyzer.Image {
		return analyzer.NewImage("img_test", nil, &imagedata.Image{
			Header: imagedata.Header{Width: 3000, Height: 2000, Orientation: 1}, Image: big,
		})
	}
	if faces := analyze(t, newAnalyzer(t), img()); len(faces) != 0 {
		t.Errorf("default MinFace found %+v; the face is meant to be below its reach", faces)
	}
	a, err := New(Config{MinFace: 0.02})
	if err != nil {
		t.Fatal(err)
	}
	if got := a.MinSide(); got != 1000 {
		t.Errorf("MinSide() = %d; want 1000 (20 px windows at 2%%)", got)
	}
	faces := analyze(t, a, img())
	if len(faces) != 1 {
		t.Fatalf("MinFace 0.02 found %d faces %+v; want 1", len(faces), faces)
	}
	checkBox(t, faces[0], astronautFace.cx, astronautFace.cy, astronautFace.side, side/512.0)
}

// checkBox fails unless f is centred within 15% of side of (cx, cy) and its
// side is within 30% of side, all times scale.
func checkBox(t *testing.T, f job.Face, cx, cy, side, scale float64) {
	t.Helper()
	gx, gy := float64(f.X)+float64(f.W)/2, float64(f.Y)+float64(f.H)/2
	tol := 0.15 * side * scale
	if gx < (cx*scale)-tol || gx > (cx*scale)+tol || gy < (cy*scale)-tol || gy > (cy*scale)+tol {
		t.Errorf("face %+v centred at (%.0f, %.0f); want (%.0f, %.0f) ± %.0f", f, gx, gy, cx*scale, cy*scale, tol)
	}
	if w := float64(f.W); w < 0.7*side*scale || w > 1.3*side*scale {
		t.Errorf("face %+v is %d wide; want %.0f ± 30%%", f, f.W, side*scale)
	}
	if f.W != f.H && abs(f.W-f.H) > 1 {
		t.Errorf("face %+v is not square", f)
	}
}

// TestNoFalseFaces runs every faceless photo: plain scenes, animals, and
// people too small or turned away to show a face.
func TestNoFalseFaces(t *testing.T) {
	a := newAnalyzer(t)
	for _, name := range []string{
		"coffee.png", "rocket.jpg", "hubble_deep_field.jpg", "motorcycle_left.png", // plain scenes
		"chelsea.png", "dog.jpg", "horses.jpg", "eagle.jpg", "giraffe.jpg", // animals
		"person.jpg", "kite.jpg", // people seen from behind or tiny
	} {
		t.Run(name, func(t *testing.T) {
			b := readPhoto(t, name)
			// 640 is what the worker asks the decoder for on faces' behalf.
			if faces := analyze(t, a, decode(t, b, 640)); len(faces) != 0 {
				t.Errorf("got faces %+v; want none", faces)
			}
		})
	}
}

// TestOrientation stores astronaut.png on its side with EXIF orientation 6
// and checks the box comes out where the upright photo has it. The padded and
// enlarged cases make the rotation change the aspect and make the working
// copy smaller than the display, so a mix-up of axes or scales shows.
func TestOrientation(t *testing.T) {
	astronaut := decodePixels(t, "astronaut.png")
	tests := []struct {
		name    string
		upright image.Image
		scale   float64 // display pixels per astronaut.png pixel
		minSide int     // decoder MinSide
	}{
		{"as is", astronaut, 1, 0},
		{"padded", onCanvas(astronaut, 800, 512, 512), 1, 0},
		{"enlarged", onCanvas(astronaut, 2400, 1600, 1600), 1600.0 / 512, 0},
		{"enlarged dct-scaled", onCanvas(astronaut, 2400, 1600, 1600), 1600.0 / 512, 640},
	}
	a := newAnalyzer(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := encodeJPEG(t, tt.upright, 92)
			upImg := decode(t, up, tt.minSide)
			upFaces := analyze(t, a, upImg)
			if len(upFaces) != 1 {
				t.Fatalf("upright: got %d faces %+v; want 1", len(upFaces), upFaces)
			}
			checkBox(t, upFaces[0], astronautFace.cx, astronautFace.cy, astronautFace.side, tt.scale)

			side := withOrientation(t, encodeJPEG(t, rotateCCW(tt.upright), 92), 6)
			sideImg := decode(t, side, tt.minSide)
			if sideImg.Header.Orientation != 6 {
				t.Fatalf("Orientation = %d; want 6", sideImg.Header.Orientation)
			}
			if gw, gh := sideImg.DisplaySize(); gw != tt.upright.Bounds().Dx() || gh != tt.upright.Bounds().Dy() {
				t.Fatalf("DisplaySize() = %dx%d; want %v", gw, gh, tt.upright.Bounds().Size())
			}
			sideFaces := analyze(t, a, sideImg)
			if len(sideFaces) != 1 {
				t.Fatalf("orientation 6: got %d faces %+v; want 1", len(sideFaces), sideFaces)
			}
			// A few pixels of the working copy, in display pixels: clusters average
			// windows of discrete sizes, so a box may move by a window step.
			tol := 4 * max(1, float64(tt.upright.Bounds().Dx())/WorkingSide)
			got, want := sideFaces[0], upFaces[0]
			t.Logf("upright %+v, orientation 6 %+v", want, got)
			if d := max(abs(got.X-want.X), abs(got.Y-want.Y), abs(got.W-want.W), abs(got.H-want.H)); float64(d) > tol {
				t.Errorf("orientation 6 face = %+v; want %+v ± %.0f px", got, want, tol)
			}
		})
	}
}

func TestTinyImage(t *testing.T) {
	a := newAnalyzer(t)
	img := analyzer.NewImage("img_test", nil, &imagedata.Image{
		Header: imagedata.Header{Width: 12, Height: 9, Orientation: 1},
		Image:  image.NewRGBA(image.Rect(0, 0, 12, 9)),
	})
	if faces := analyze(t, a, img); len(faces) != 0 {
		t.Errorf("got faces %+v; want none", faces)
	}
}

func TestCanceled(t *testing.T) {
	a := newAnalyzer(t)
	img := analyzer.NewImage("img_test", nil, &imagedata.Image{
		Header: imagedata.Header{Width: 64, Height: 64, Orientation: 1},
		Image:  image.NewRGBA(image.Rect(0, 0, 64, 64)),
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var res job.Result
	err := a.Analyze(ctx, img, &res)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Analyze() error = %v; want context.Canceled", err)
	}
	if res.Faces != nil {
		t.Errorf("Faces = %+v after an error; want nil", res.Faces)
	}
}

func TestToFace(t *testing.T) {
	tests := []struct {
		name   string
		d      pigo.Detection
		sx, sy float64
		dw, dh int
		want   job.Face
		wantOK bool
	}{
		{"inside", pigo.Detection{Row: 50, Col: 40, Scale: 20, Q: 30}, 1, 1, 100, 100, job.Face{X: 30, Y: 40, W: 20, H: 20, Confidence: 30}, true},
		{"scaled", pigo.Detection{Row: 50, Col: 40, Scale: 20, Q: 30}, 2.5, 2.5, 250, 250, job.Face{X: 75, Y: 100, W: 50, H: 50, Confidence: 30}, true},
		{"top left clamped", pigo.Detection{Row: 5, Col: 4, Scale: 20, Q: 30}, 1, 1, 100, 100, job.Face{X: 0, Y: 0, W: 14, H: 15, Confidence: 30}, true},
		{"bottom right clamped", pigo.Detection{Row: 95, Col: 96, Scale: 20, Q: 30}, 1, 1, 100, 100, job.Face{X: 86, Y: 85, W: 14, H: 15, Confidence: 30}, true},
		{"outside", pigo.Detection{Row: 150, Col: 150, Scale: 20, Q: 30}, 1, 1, 100, 100, job.Face{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := toFace(tt.d, tt.sx, tt.sy, tt.dw, tt.dh)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("toFace(%+v) = %+v, %v; want %+v, %v", tt.d, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestSuppress(t *testing.T) {
	strong := pigo.Detection{Row: 100, Col: 100, Scale: 80, Q: 70}
	nested := pigo.Detection{Row: 95, Col: 105, Scale: 60, Q: 25}
	apart := pigo.Detection{Row: 100, Col: 200, Scale: 80, Q: 40}
	weak := pigo.Detection{Row: 300, Col: 300, Scale: 40, Q: 3}
	tests := []struct {
		name string
		in   []pigo.Detection
		want []pigo.Detection
	}{
		{"none", nil, nil},
		{"weak dropped", []pigo.Detection{weak}, nil},
		{"nested duplicate dropped", []pigo.Detection{nested, strong}, []pigo.Detection{strong}},
		{"side by side kept, best first", []pigo.Detection{apart, weak, strong}, []pigo.Detection{strong, apart}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := suppress(tt.in, 20)
			if len(got) != len(tt.want) {
				t.Fatalf("suppress() = %+v; want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("suppress()[%d] = %+v; want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func abs(v int) int { return max(v, -v) }

// TestConcurrent backs the claim that one Analyzer, and the cascade shared
// by all, may be used from many goroutines (run with -race).
func TestConcurrent(t *testing.T) {
	a := newAnalyzer(t)
	b := readPhoto(t, "astronaut.png")
	imgs := []*analyzer.Image{decode(t, b, 0), decode(t, b, 0)}
	errs := make(chan error, len(imgs))
	for _, img := range imgs {
		go func() {
			var res job.Result
			err := a.Analyze(context.Background(), img, &res)
			if err == nil && len(res.Faces) != 1 {
				err = errors.New("wrong number of faces")
			}
			errs <- err
		}()
	}
	for range imgs {
		if err := <-errs; err != nil {
			t.Errorf("Analyze() error = %v", err)
		}
	}
}
