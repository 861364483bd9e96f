package imagedata

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestBadInputs(t *testing.T) {
	jpg := encodeJPEG(t, textured(256, 192), 90)
	pngb := encodePNG(t, textured(256, 192))

	tests := []struct {
		name       string
		data       []byte
		lim        Limits
		wantKind   error
		wantStatus int
		wantMsg    string // substring of the public message
	}{
		{"empty", nil, DefaultLimits(), ErrEmpty, 400, "empty"},
		{"text file", []byte("hello, this is not an image\n"), DefaultLimits(), ErrUnsupported, 415, "JPEG, PNG, GIF and WEBP"},
		{"html", []byte("<!doctype html><html></html>"), DefaultLimits(), ErrUnsupported, 415, "not a recognised image"},
		{"heic", []byte("\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"), DefaultLimits(), ErrUnsupported, 415, "HEIC images are not supported"},
		{"bmp", append([]byte("BM"), make([]byte, 60)...), DefaultLimits(), ErrUnsupported, 415, "BMP"},
		{"garbage before png", append([]byte("x"), pngb...), DefaultLimits(), ErrUnsupported, 415, "supported formats"},
		{"truncated jpeg", jpg[:len(jpg)/2], DefaultLimits(), ErrCorrupt, 422, "JPEG data is truncated or corrupt"},
		{"jpeg header only", jpg[:200], DefaultLimits(), ErrCorrupt, 422, "corrupt"},
		{"jpeg soi only", []byte{0xFF, 0xD8, 0xFF}, DefaultLimits(), ErrCorrupt, 422, "corrupt"},
		{"truncated png", pngb[:len(pngb)/2], DefaultLimits(), ErrCorrupt, 422, "PNG data"},
		{"png signature only", pngb[:8], DefaultLimits(), ErrCorrupt, 422, "PNG data"},
		{"png bomb 65535x65535", pngHeader(65535, 65535), DefaultLimits(), ErrTooManyPixels, 422,
			"image is 65535×65535 = 4294.8 megapixels; the limit is 50 megapixels"},
		{"gif bomb 65535x65535", gifHeader(65535, 65535), DefaultLimits(), ErrTooManyPixels, 422, "65535×65535"},
		{"jpeg bomb 65535x65535", jpegHeader(65535, 65535), DefaultLimits(), ErrTooManyPixels, 422, "65535×65535"},
		{"webp bomb 16384x16384", webpLosslessHeader(16384, 16384), DefaultLimits(), ErrTooManyPixels, 422, "16384×16384 = 268.4 megapixels"},
		{"real png over a small pixel limit", pngb, Limits{MaxPixels: 10_000}, ErrTooManyPixels, 422,
			"image is 256×192 = 0.0 megapixels; the limit is 0.01 megapixels"},
		{"over byte limit", jpg, Limits{MaxBytes: 1000}, ErrTooLarge, 413, "the limit is 1000 bytes"},
		{"zero-size gif", gifHeader(0, 10), DefaultLimits(), ErrCorrupt, 422, "GIF"},
		{"truncated gif", gifHeader(10, 10), DefaultLimits(), ErrCorrupt, 422, "GIF"},
		{"riff but not webp", []byte("RIFF\x10\x00\x00\x00WAVEfmt "), DefaultLimits(), ErrUnsupported, 415, "supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(tt.data, tt.lim, DecodeOptions{MinSide: 64})
			if !errors.Is(err, tt.wantKind) {
				t.Fatalf("Decode() error = %v; want kind %v", err, tt.wantKind)
			}
			if got := StatusOf(err); got != tt.wantStatus {
				t.Errorf("StatusOf() = %d; want %d", got, tt.wantStatus)
			}
			if got := MessageOf(err); !strings.Contains(got, tt.wantMsg) {
				t.Errorf("MessageOf() = %q; want it to contain %q", got, tt.wantMsg)
			}
			if !strings.HasPrefix(err.Error(), "imagedata: ") {
				t.Errorf("Error() = %q; want prefix %q", err.Error(), "imagedata: ")
			}
			// Inspect must agree with Decode on everything but corrupt pixel data.
			if _, ierr := Inspect(tt.data, tt.lim); ierr != nil && !errors.Is(ierr, tt.wantKind) {
				t.Errorf("Inspect() error = %v; want nil or kind %v", ierr, tt.wantKind)
			}
		})
	}
}

func TestInspect(t *testing.T) {
	q := quadrants(64, 48)
	jpg := encodeJPEG(t, q, 90)
	pngb := encodePNG(t, q)
	tests := []struct {
		name string
		data []byte
		want Header
	}{
		{"jpeg", jpg, Header{JPEG, "image/jpeg", 64, 48, 1}},
		{"jpeg orientation 6", withOrientation(jpg, 6), Header{JPEG, "image/jpeg", 64, 48, 6}},
		{"jpeg orientation out of range", withOrientation(jpg, 9), Header{JPEG, "image/jpeg", 64, 48, 1}},
		{"png", pngb, Header{PNG, "image/png", 64, 48, 1}},
		{"gif", encodeGIF(t, q), Header{GIF, "image/gif", 64, 48, 1}},
		// A polyglot: bytes are judged by their magic, whatever the name says.
		{"png bytes named photo.jpg", pngb, Header{PNG, "image/png", 64, 48, 1}},
		{"jpeg with png appended", append(append([]byte{}, jpg...), pngb...), Header{JPEG, "image/jpeg", 64, 48, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Inspect(tt.data, DefaultLimits())
			if err != nil {
				t.Fatalf("Inspect() error = %v", err)
			}
			if got != tt.want {
				t.Errorf("Inspect() = %+v; want %+v", got, tt.want)
			}
		})
	}
}

func TestDisplaySize(t *testing.T) {
	for o := 1; o <= 8; o++ {
		h := Header{Width: 40, Height: 30, Orientation: o}
		w, ht := h.DisplaySize()
		want := [2]int{40, 30}
		if o >= 5 {
			want = [2]int{30, 40}
		}
		if got := [2]int{w, ht}; got != want {
			t.Errorf("orientation %d: DisplaySize() = %v; want %v", o, got, want)
		}
	}
}

// countingReader counts the bytes handed out.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func TestReadAll(t *testing.T) {
	lim := Limits{MaxBytes: 1000}
	tests := []struct {
		name     string
		size     int
		lim      Limits
		wantKind error // nil for success
	}{
		{"empty", 0, lim, ErrEmpty},
		{"under limit", 999, lim, nil},
		{"at limit", 1000, lim, nil},
		{"one over", 1001, lim, ErrTooLarge},
		{"far over", 10 << 20, lim, ErrTooLarge},
		{"no limit", 5000, Limits{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cr := &countingReader{r: io.LimitReader(zeroReader{}, int64(tt.size))}
			b, err := ReadAll(cr, tt.lim)
			if tt.wantKind == nil {
				if err != nil {
					t.Fatalf("ReadAll() error = %v", err)
				}
				if len(b) != tt.size {
					t.Errorf("ReadAll() returned %d bytes; want %d", len(b), tt.size)
				}
				return
			}
			if !errors.Is(err, tt.wantKind) {
				t.Fatalf("ReadAll() error = %v; want kind %v", err, tt.wantKind)
			}
			if tt.lim.MaxBytes > 0 && cr.n > tt.lim.MaxBytes+1 {
				t.Errorf("ReadAll() read %d bytes; want at most %d", cr.n, tt.lim.MaxBytes+1)
			}
		})
	}

	t.Run("http.MaxBytesReader", func(t *testing.T) {
		r := http.MaxBytesReader(nil, io.NopCloser(bytes.NewReader(make([]byte, 100))), 10)
		_, err := ReadAll(r, Limits{})
		if !errors.Is(err, ErrTooLarge) || StatusOf(err) != 413 {
			t.Errorf("ReadAll() error = %v (status %d); want ErrTooLarge (413)", err, StatusOf(err))
		}
	})
	t.Run("read error", func(t *testing.T) {
		boom := errors.New("boom")
		_, err := ReadAll(io.MultiReader(bytes.NewReader([]byte("abc")), errReader{boom}), lim)
		if !errors.Is(err, boom) || StatusOf(err) != 500 {
			t.Errorf("ReadAll() error = %v (status %d); want boom (500)", err, StatusOf(err))
		}
	})
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestStatusOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, 200},
		{"other", errors.New("x"), 500},
		{"bare sentinel", ErrTooLarge, 413},
		{"wrapped Error", errors.Join(errors.New("ctx"), errTooManyPixels(10, 10, 5)), 422},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := StatusOf(tt.err); got != tt.want {
				t.Errorf("StatusOf(%v) = %d; want %d", tt.err, got, tt.want)
			}
		})
	}
}

func TestErrTooLargeMessage(t *testing.T) {
	tests := []struct {
		size, limit int64
		want        string
	}{
		{-1, 25 << 20, "image is larger than the 25 MiB limit"},
		{30 << 20, 25 << 20, "image is 30 MiB; the limit is 25 MiB"},
		{25<<20 + 1, 25 << 20, "image is 26214401 bytes; the limit is 26214400 bytes"},
		{2048, 1024, "image is 2 KiB; the limit is 1 KiB"},
	}
	for _, tt := range tests {
		if got := errTooLarge(tt.size, tt.limit).Message; got != tt.want {
			t.Errorf("errTooLarge(%d, %d).Message = %q; want %q", tt.size, tt.limit, got, tt.want)
		}
	}
}
