package e2e

import (
	"bytes"
	"fmt"
	"image"
	"image/draw"
	"image/jpeg"
	"image/png"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fullView is the image JSON with every feature's answer.
type fullView struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Error  string `json:"error"`
	Result struct {
		Width  int `json:"width"`
		Height int `json:"height"`
		Labels []struct {
			Label string  `json:"label"`
			Score float64 `json:"score"`
		} `json:"labels"`
		QR []struct {
			Text   string `json:"text"`
			Format string `json:"format"`
			URL    *struct {
				Host string `json:"host"`
				Path string `json:"path"`
			} `json:"url"`
		} `json:"qr"`
		EXIF *struct {
			TakenAt   string   `json:"taken_at"`
			Latitude  *float64 `json:"latitude"`
			Longitude *float64 `json:"longitude"`
		} `json:"exif"`
		Faces *[]struct {
			X, Y, W, H int
		} `json:"faces"`
		Colors *struct {
			Dominant []struct {
				Hex      string  `json:"hex"`
				Fraction float64 `json:"fraction"`
			} `json:"dominant"`
		} `json:"colors"`
		Quality *struct {
			Sharpness float64 `json:"sharpness"`
			Exposure  string  `json:"exposure"`
		} `json:"quality"`
		PHash     string `json:"phash"`
		Thumbnail *struct {
			Width  int `json:"width"`
			Height int `json:"height"`
		} `json:"thumbnail"`
		Errors map[string]string `json:"errors"`
	} `json:"result"`
}

// tool returns the path of an external fixture tool, failing in strict mode
// when it is missing.
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("GLIMPSE_STRICT_TESTS") == "1" {
			t.Fatalf("%s is not installed (scripts/setup.sh installs it)", name)
		}
		t.Skipf("%s is not installed", name)
	}
	return p
}

// qrPhoto pastes a QR code of text onto a real photo and returns it as a JPEG
// file with EXIF time and GPS written by exiftool.
func qrPhoto(t *testing.T, text string, exifArgs ...string) []byte {
	t.Helper()
	dir := t.TempDir()
	qrPNG := filepath.Join(dir, "qr.png")
	if out, err := exec.Command(tool(t, "qrencode"), "-o", qrPNG, "-s", "6", "-m", "2", text).CombinedOutput(); err != nil {
		t.Fatalf("qrencode: %v %s", err, out)
	}
	f, err := os.Open(qrPNG)
	if err != nil {
		t.Fatal(err)
	}
	code, err := png.Decode(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	bg, _, err := image.Decode(bytes.NewReader(readPhoto(t, "kite.jpg")))
	if err != nil {
		t.Fatal(err)
	}
	canvas := image.NewRGBA(bg.Bounds())
	draw.Draw(canvas, canvas.Bounds(), bg, bg.Bounds().Min, draw.Src)
	at := image.Pt(canvas.Bounds().Dx()/3, canvas.Bounds().Dy()/3)
	draw.Draw(canvas, code.Bounds().Add(at), code, code.Bounds().Min, draw.Src)
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, canvas, &jpeg.Options{Quality: 85}); err != nil {
		t.Fatal(err)
	}
	return withEXIF(t, buf.Bytes(), exifArgs...)
}

// withEXIF writes tags into a copy of a JPEG with exiftool.
func withEXIF(t *testing.T, b []byte, args ...string) []byte {
	t.Helper()
	if len(args) == 0 {
		return b
	}
	p := filepath.Join(t.TempDir(), "x.jpg")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(tool(t, "exiftool"), append(append([]string{"-q", "-overwrite_original"}, args...), p)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("exiftool: %v %s", err, out)
	}
	out, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func uploadFull(t *testing.T, base, query, name string, b []byte) fullView {
	t.Helper()
	var v fullView
	resp := uploadFiles(t, base, query, map[string][]byte{name: b}, &v)
	if resp.StatusCode != 200 || v.Status != "done" {
		t.Fatalf("upload %s%s = %d %+v; want 200 done", name, query, resp.StatusCode, v)
	}
	return v
}

// TestFeatures asks for every feature on real photos through a real serve.
func TestFeatures(t *testing.T) {
	s := startServe(t, t.TempDir(), "--workers", "2")
	product := "https://shop.example/p/4711?ref=qr"
	photo := qrPhoto(t, product,
		"-DateTimeOriginal=2024:05:17 14:03:11", "-OffsetTimeOriginal=+02:00",
		"-GPSLatitude=33.8688", "-GPSLatitudeRef=S", "-GPSLongitude=151.2093", "-GPSLongitudeRef=E")
	v := uploadFull(t, s.URL, "?features=all&wait=60s", "kite-qr.jpg", photo)
	r := v.Result
	if len(r.Errors) != 0 {
		t.Errorf("feature errors: %v", r.Errors)
	}
	if len(r.QR) != 1 || r.QR[0].Text != product || r.QR[0].URL == nil || r.QR[0].URL.Host != "shop.example" || r.QR[0].URL.Path != "/p/4711" {
		t.Errorf("qr = %+v; want %q with host and path", r.QR, product)
	}
	if r.EXIF == nil || r.EXIF.TakenAt != "2024-05-17T14:03:11+02:00" || r.EXIF.Latitude == nil ||
		math.Abs(*r.EXIF.Latitude+33.8688) > 1e-6 || math.Abs(*r.EXIF.Longitude-151.2093) > 1e-6 {
		t.Errorf("exif = %+v; want the time with its offset and Sydney (south, east)", r.EXIF)
	}
	if len(r.Labels) == 0 || r.Colors == nil || len(r.Colors.Dominant) == 0 || r.Quality == nil || len(r.PHash) != 16 || r.Faces == nil || r.Thumbnail == nil {
		t.Errorf("features=all lacks something: labels %d, colors %v, quality %v, phash %q, faces %v, thumbnail %v",
			len(r.Labels), r.Colors, r.Quality, r.PHash, r.Faces, r.Thumbnail)
	}

	// The thumbnail is served as a JPEG of the size the result names.
	req, _ := http.NewRequest("GET", s.URL+"/v1/images/"+v.ID+"/thumbnail", nil)
	resp := do(t, req, nil)
	body, _ := io.ReadAll(resp.Body)
	if th, err := jpeg.DecodeConfig(bytes.NewReader(body)); err != nil || r.Thumbnail == nil || th.Width != r.Thumbnail.Width || th.Height != r.Thumbnail.Height {
		t.Errorf("thumbnail: %d %v %+v; want a JPEG matching the result", resp.StatusCode, err, r.Thumbnail)
	}

	// A face on the astronaut, none on the espresso.
	astro := uploadFull(t, s.URL, "?features=faces&wait=60s", "astronaut.png", readPhoto(t, "astronaut.png"))
	if astro.Result.Faces == nil || len(*astro.Result.Faces) != 1 {
		t.Errorf("astronaut faces = %+v; want exactly 1", astro.Result.Faces)
	}
	coffee := uploadFull(t, s.URL, "?features=faces,phash&wait=60s", "coffee.png", readPhoto(t, "coffee.png"))
	if coffee.Result.Faces == nil || len(*coffee.Result.Faces) != 0 {
		t.Errorf("coffee faces = %+v; want none (and an empty list, not absent)", coffee.Result.Faces)
	}

	// A re-encoded, smaller copy of the espresso is a near-duplicate.
	img, _, _ := image.Decode(bytes.NewReader(readPhoto(t, "coffee.png")))
	var small bytes.Buffer
	jpeg.Encode(&small, img, &jpeg.Options{Quality: 60})
	copyV := uploadFull(t, s.URL, "?features=phash&wait=60s", "coffee-copy.jpg", small.Bytes())
	var sim struct {
		Images []struct {
			Distance int `json:"distance"`
			Image    struct {
				ID string `json:"id"`
			} `json:"image"`
		} `json:"images"`
	}
	req, _ = http.NewRequest("GET", s.URL+"/v1/images/"+coffee.ID+"/similar?max_distance=10", nil)
	do(t, req, &sim)
	if len(sim.Images) != 1 || sim.Images[0].Image.ID != copyV.ID {
		t.Errorf("similar to coffee = %+v; want only its re-encoded copy", sim.Images)
	}

	// The list filters on what the analyzers found.
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"qr_url=" + url.QueryEscape("https://shop.example/p/"), []string{v.ID}},
		{"qr_url=" + url.QueryEscape("https://elsewhere/"), nil},
		{"near=-33.87,151.21,5", []string{v.ID}},
		{"near=48.85,2.35,50", nil},
		{"taken_after=2024-05-17T12:00:00Z&taken_before=2024-05-18", []string{v.ID}},
		{"taken_after=2024-05-17T12:03:12Z", nil},
		{"has_faces=true", []string{astro.ID}},
	} {
		var list struct {
			Images []imageView `json:"images"`
		}
		req, _ := http.NewRequest("GET", s.URL+"/v1/images?"+tc.query, nil)
		if resp := do(t, req, &list); resp.StatusCode != 200 {
			t.Errorf("%s = %d", tc.query, resp.StatusCode)
			continue
		}
		var got []string
		for _, im := range list.Images {
			got = append(got, im.ID)
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("list?%s = %v; want %v", tc.query, got, tc.want)
		}
	}
}

// TestOrientation stores a photo rotated with EXIF orientation 6 and checks
// it reads as the upright one: same size, same top label.
func TestOrientation(t *testing.T) {
	s := startServe(t, t.TempDir(), "--workers", "1")
	src, _, err := image.Decode(bytes.NewReader(readPhoto(t, "chelsea.png")))
	if err != nil {
		t.Fatal(err)
	}
	b := src.Bounds()
	// Orientation 6 means "rotate 90° clockwise to display", so store the
	// pixels turned 90° counter-clockwise.
	rot := image.NewRGBA(image.Rect(0, 0, b.Dy(), b.Dx()))
	for y := 0; y < b.Dy(); y++ {
		for x := 0; x < b.Dx(); x++ {
			rot.Set(y, b.Dx()-1-x, src.At(b.Min.X+x, b.Min.Y+y))
		}
	}
	var upright, stored bytes.Buffer
	jpeg.Encode(&upright, src, &jpeg.Options{Quality: 92})
	jpeg.Encode(&stored, rot, &jpeg.Options{Quality: 92})
	rotated := withEXIF(t, stored.Bytes(), "-Orientation#=6")

	a := uploadFull(t, s.URL, "?wait=60s", "upright.jpg", upright.Bytes())
	r := uploadFull(t, s.URL, "?wait=60s", "rotated.jpg", rotated)
	if r.Result.Width != b.Dx() || r.Result.Height != b.Dy() {
		t.Errorf("rotated photo reads as %d×%d; want the upright %d×%d", r.Result.Width, r.Result.Height, b.Dx(), b.Dy())
	}
	if len(a.Result.Labels) == 0 || len(r.Result.Labels) == 0 || a.Result.Labels[0].Label != r.Result.Labels[0].Label {
		t.Errorf("top labels: upright %+v, rotated %+v; want the same", a.Result.Labels, r.Result.Labels)
	}
	if !strings.Contains(r.Result.Labels[0].Label, "cat") {
		t.Errorf("rotated chelsea top-1 = %q; want a cat", r.Result.Labels[0].Label)
	}
}
