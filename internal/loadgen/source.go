package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
)

// Item is one image to send.
type Item struct {
	// Name identifies the image in results and is sent as its file name.
	Name string
	Data []byte
	// Want is the expected answer, when known; nil otherwise.
	Want *Expected
}

// A Source yields the images of a run. Next returns io.EOF when there are
// no more. The runner calls Next from one goroutine at a time.
type Source interface {
	Next(ctx context.Context) (Item, error)
}

// Files is a Source reading image files, in order, optionally over and over.
type Files struct {
	paths []string
	loop  bool
	i     int
}

// NewFiles returns a Source of the files at paths; with loop it starts over
// after the last one.
func NewFiles(paths []string, loop bool) *Files { return &Files{paths: paths, loop: loop} }

// Next reads the next file.
func (f *Files) Next(ctx context.Context) (Item, error) {
	if len(f.paths) == 0 || f.i >= len(f.paths) && !f.loop {
		return Item{}, io.EOF
	}
	p := f.paths[f.i%len(f.paths)]
	f.i++
	b, err := os.ReadFile(p)
	if err != nil {
		return Item{}, fmt.Errorf("loadgen: %w", err)
	}
	return Item{Name: p, Data: b}, nil
}

// ReadList reads a list of file paths, one a line; blank lines and lines
// starting with # are skipped.
func ReadList(r io.Reader) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("loadgen: reading list: %w", err)
	}
	return out, nil
}

// Generated is an endless Source of synthetic JPEG images, each different
// (so the server never answers one from an earlier result), made from a
// seed so that runs repeat.
type Generated struct {
	w, h    int
	quality int
	seed    uint64
	n       int
	buf     bytes.Buffer
}

// NewGenerated returns a Source of w×h JPEGs at the given quality (1–100).
func NewGenerated(w, h, quality int, seed uint64) (*Generated, error) {
	if w < 8 || h < 8 || w > 10000 || h > 10000 {
		return nil, fmt.Errorf("loadgen: generated size %d×%d: want 8 to 10000 pixels a side", w, h)
	}
	if quality < 1 || quality > 100 {
		return nil, fmt.Errorf("loadgen: jpeg quality %d: want 1 to 100", quality)
	}
	return &Generated{w: w, h: h, quality: quality, seed: seed}, nil
}

// ParseSize parses "WxH" (or "W×H") such as 640x480.
func ParseSize(s string) (w, h int, err error) {
	a, b, ok := strings.Cut(strings.ToLower(strings.ReplaceAll(s, "×", "x")), "x")
	if ok {
		w, err = strconv.Atoi(strings.TrimSpace(a))
		if err == nil {
			h, err = strconv.Atoi(strings.TrimSpace(b))
		}
	}
	if !ok || err != nil || w <= 0 || h <= 0 {
		return 0, 0, fmt.Errorf("loadgen: size %q: want WIDTHxHEIGHT such as 640x480", s)
	}
	return w, h, nil
}

// Next makes the next image: a soft gradient with a few coloured discs and
// grain, so it compresses like a photo rather than a flat fill.
func (g *Generated) Next(ctx context.Context) (Item, error) {
	if err := ctx.Err(); err != nil {
		return Item{}, err
	}
	g.n++
	rng := rand.New(rand.NewPCG(g.seed, uint64(g.n)))
	img := image.NewYCbCr(image.Rect(0, 0, g.w, g.h), image.YCbCrSubsampleRatio420)
	type disc struct {
		x, y, r2 int
		c        color.YCbCr
	}
	discs := make([]disc, 3+rng.IntN(5))
	for i := range discs {
		r := (g.w + g.h) / (8 + rng.IntN(12))
		discs[i] = disc{rng.IntN(g.w), rng.IntN(g.h), r * r,
			color.YCbCr{Y: uint8(rng.IntN(256)), Cb: uint8(rng.IntN(256)), Cr: uint8(rng.IntN(256))}}
	}
	y0, dy := rng.IntN(128), rng.IntN(128)
	cb, cr := uint8(96+rng.IntN(64)), uint8(96+rng.IntN(64))
	for y := range g.h {
		for x := range g.w {
			c := color.YCbCr{Y: uint8(y0 + dy*y/g.h + rng.IntN(16)), Cb: cb, Cr: cr}
			for _, d := range discs {
				if (x-d.x)*(x-d.x)+(y-d.y)*(y-d.y) < d.r2 {
					c = d.c
					c.Y += uint8(rng.IntN(8))
				}
			}
			img.Y[img.YOffset(x, y)] = c.Y
			ci := img.COffset(x, y)
			img.Cb[ci], img.Cr[ci] = c.Cb, c.Cr
		}
	}
	g.buf.Reset()
	if err := jpeg.Encode(&g.buf, img, &jpeg.Options{Quality: g.quality}); err != nil {
		return Item{}, fmt.Errorf("loadgen: encoding a generated image: %w", err)
	}
	return Item{Name: fmt.Sprintf("gen-%06d.jpg", g.n), Data: bytes.Clone(g.buf.Bytes())}, nil
}

// Chan is a Source fed by another goroutine, such as the pump as it makes
// images; it ends when the channel is closed.
type Chan struct {
	ch <-chan Item
}

// NewChan returns a Source reading from ch.
func NewChan(ch <-chan Item) *Chan { return &Chan{ch: ch} }

// Next waits for the next item.
func (c *Chan) Next(ctx context.Context) (Item, error) {
	select {
	case it, ok := <-c.ch:
		if !ok {
			return Item{}, io.EOF
		}
		return it, nil
	case <-ctx.Done():
		return Item{}, ctx.Err()
	}
}
