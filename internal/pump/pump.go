// Package pump makes realistic photos that tell a story: each shows a QR
// code of a shop's product URL on a table or a photo, and carries in its
// EXIF when and where it was taken. Products follow a popularity skew,
// times a daily rhythm over a date range, places a weighted set of cities.
// Photos are deterministic: the same Config and index give the same bytes,
// whatever else runs.
package pump

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	_ "image/png" // backgrounds may be PNG
	"math"
	"math/rand/v2"
	"os"
	"sync"
	"time"
)

// Config says what photos to make.
type Config struct {
	// Seed makes the photos; the same seed gives the same bytes.
	Seed uint64
	// From and Until bound the times taken, [From, Until).
	From, Until time.Time
	// Shop is the host of the product URLs; Products the catalogue size;
	// Skew the Zipf exponent of their popularity (default 1.1).
	Shop     string
	Products int
	Skew     float64
	// Width and Height are the display size of each photo.
	Width, Height int
	// QualityMin and QualityMax bound the JPEG quality, drawn per photo.
	QualityMin, QualityMax int
	// Rotated is the share of photos stored turned, with an EXIF
	// orientation (3, 6 or 8) so that they display upright.
	Rotated float64
	// Backgrounds are photo files to lay the codes on; none means
	// procedural surfaces.
	Backgrounds []string
	// Cities are where photos are taken (default DefaultCities).
	Cities []City
}

// NewDefaultConfig returns a Config for 1280×960 photos of 50 products on
// shop.example over May 2024.
func NewDefaultConfig() Config {
	return Config{
		Seed:       1,
		From:       time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC),
		Until:      time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC),
		Shop:       "shop.example",
		Products:   50,
		Skew:       1.1,
		Width:      1280,
		Height:     960,
		QualityMin: 70,
		QualityMax: 92,
		Rotated:    0.25,
	}
}

// Validate reports what is wrong with c.
func (c *Config) Validate() error {
	var errs []error
	if !c.From.Before(c.Until) {
		errs = append(errs, fmt.Errorf("pump: time range %s to %s is empty", c.From.Format(time.RFC3339), c.Until.Format(time.RFC3339)))
	}
	if c.Shop == "" {
		errs = append(errs, errors.New("pump: no shop host"))
	}
	if c.Products < 1 || c.Products > 9999 {
		errs = append(errs, fmt.Errorf("pump: products %d: want 1 to 9999", c.Products))
	}
	if c.Skew < 0 {
		errs = append(errs, fmt.Errorf("pump: skew %g: want 0 or more", c.Skew))
	}
	if c.Width < 320 || c.Height < 240 || c.Width > 8000 || c.Height > 8000 {
		errs = append(errs, fmt.Errorf("pump: size %dx%d: want 320x240 to 8000x8000", c.Width, c.Height))
	}
	if c.QualityMin < 1 || c.QualityMax > 100 || c.QualityMin > c.QualityMax {
		errs = append(errs, fmt.Errorf("pump: quality %d-%d: want a range within 1-100", c.QualityMin, c.QualityMax))
	}
	if c.Rotated < 0 || c.Rotated > 1 {
		errs = append(errs, fmt.Errorf("pump: rotated share %g: want 0 to 1", c.Rotated))
	}
	for _, city := range c.Cities {
		if city.Weight <= 0 || math.Abs(city.Lat) > 85 || math.Abs(city.Lon) > 180 {
			errs = append(errs, fmt.Errorf("pump: city %q: want a positive weight and a latitude within ±85°", city.Name))
		}
	}
	return errors.Join(errs...)
}

// Entry is one line of the manifest: what a photo holds.
type Entry struct {
	File    string `json:"file"`
	QR      string `json:"qr"`
	Product string `json:"product"`
	// TakenAt is RFC 3339 with the city's UTC offset.
	TakenAt string  `json:"taken_at"`
	Lat     float64 `json:"lat"`
	Lon     float64 `json:"lon"`
	City    string  `json:"city"`
	// Orientation is the EXIF orientation written (1 when upright).
	Orientation int `json:"orientation"`
}

// Photo is one made photo.
type Photo struct {
	Entry Entry
	// Data is the JPEG file.
	Data []byte
}

// Pump makes photos. It is safe for concurrent use.
type Pump struct {
	cfg      Config
	products weighted
	cities   weighted
	hours    weighted
	zones    []*time.Location

	bgOnce sync.Once
	bgs    []image.Image
	bgErr  error
}

// New checks cfg and returns a Pump.
func New(cfg Config) (*Pump, error) {
	if cfg.Skew == 0 {
		cfg.Skew = 1.1
	}
	if len(cfg.Cities) == 0 {
		cfg.Cities = DefaultCities
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Pump{cfg: cfg, products: newWeighted(zipfWeights(cfg.Products, cfg.Skew)), hours: newWeighted(hourWeights[:])}
	ws := make([]float64, len(cfg.Cities))
	for i, c := range cfg.Cities {
		ws[i] = c.Weight
		loc, err := c.location()
		if err != nil {
			return nil, fmt.Errorf("pump: city %q: time zone: %w", c.Name, err)
		}
		p.zones = append(p.zones, loc)
	}
	p.cities = newWeighted(ws)
	return p, nil
}

// backgrounds decodes the background photos once.
func (p *Pump) backgrounds() ([]image.Image, error) {
	p.bgOnce.Do(func() {
		for _, path := range p.cfg.Backgrounds {
			b, err := os.ReadFile(path)
			if err != nil {
				p.bgErr = fmt.Errorf("pump: background: %w", err)
				return
			}
			img, _, err := image.Decode(bytes.NewReader(b))
			if err != nil {
				p.bgErr = fmt.Errorf("pump: background %s: %v", path, err)
				return
			}
			p.bgs = append(p.bgs, img)
		}
	})
	return p.bgs, p.bgErr
}

// Photo makes photo number i (from 1), named pump-000001.jpg and so on.
func (p *Pump) Photo(i int) (Photo, error) {
	rng := rand.New(rand.NewPCG(p.cfg.Seed, uint64(i)))
	cfg := p.cfg

	k := p.products.pick(rng)
	product := productPath(k)
	text := "https://" + cfg.Shop + product
	ci := p.cities.pick(rng)
	city := cfg.Cities[ci]
	lat, lon := place(rng, city)
	gps, err := NewGPS(lat, lon)
	if err != nil {
		return Photo{}, err
	}
	lat, lon = gps.Degrees()
	taken := takenAt(rng, p.hours, cfg.From, cfg.Until, p.zones[ci])
	orientation := 1
	if rng.Float64() < cfg.Rotated {
		orientation = []int{3, 6, 8}[rng.IntN(3)]
	}
	quality := cfg.QualityMin + rng.IntN(cfg.QualityMax-cfg.QualityMin+1)
	cam := cameras[rng.IntN(len(cameras))]

	// The scene, upright.
	var canvas *image.RGBA
	if len(cfg.Backgrounds) > 0 {
		bgs, err := p.backgrounds()
		if err != nil {
			return Photo{}, err
		}
		canvas = photoBackground(rng, bgs[rng.IntN(len(bgs))], cfg.Width, cfg.Height)
	} else {
		canvas = texture(rng, cfg.Width, cfg.Height)
	}
	m, err := qrMatrix(text)
	if err != nil {
		return Photo{}, fmt.Errorf("pump: encoding %q as a QR code: %v", text, err)
	}
	short := float64(min(cfg.Width, cfg.Height))
	// Modules of 4 pixels or more, the code at most 60% of the short side.
	module := math.Max(4, math.Min(short*(0.3+0.3*rng.Float64())/float64(m.GetWidth()), 12))
	side := module * float64(m.GetWidth())
	angle := (rng.Float64()*2 - 1) * 30 * math.Pi / 180
	reach := side/2*(math.Abs(math.Cos(angle))+math.Abs(math.Sin(angle))) + 8
	if 2*reach > short {
		return Photo{}, fmt.Errorf("pump: a %dx%d photo is too small for a code of %d modules", cfg.Width, cfg.Height, m.GetWidth())
	}
	paper := 232 + 20*rng.Float64()
	ink := 18 + 25*rng.Float64()
	c := card{
		m: m, module: module, angle: angle,
		cx:       reach + rng.Float64()*(float64(cfg.Width)-2*reach),
		cy:       reach + rng.Float64()*(float64(cfg.Height)-2*reach),
		paper:    [3]float64{paper, paper - 2, paper - 6},
		ink:      [3]float64{ink, ink, ink + 4},
		shadowDx: 2 + 4*rng.Float64(),
		shadowDy: 3 + 5*rng.Float64(),
	}
	c.draw(canvas)
	grain(rng, canvas, 2+3*rng.Float64())

	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, storedForOrientation(canvas, orientation), &jpeg.Options{Quality: quality}); err != nil {
		return Photo{}, fmt.Errorf("pump: jpeg: %v", err)
	}
	app1, err := EXIF{Make: cam.make, Model: cam.model, Orientation: orientation, TakenAt: taken, GPS: gps}.APP1()
	if err != nil {
		return Photo{}, err
	}
	data, err := InsertSegment(buf.Bytes(), app1)
	if err != nil {
		return Photo{}, err
	}
	return Photo{
		Entry: Entry{
			File:        fmt.Sprintf("pump-%06d.jpg", i),
			QR:          text,
			Product:     product,
			TakenAt:     taken.Format(time.RFC3339),
			Lat:         lat,
			Lon:         lon,
			City:        city.Name,
			Orientation: orientation,
		},
		Data: data,
	}, nil
}

// cameras are the Make and Model written, drawn per photo.
var cameras = []struct{ make, model string }{
	{"Apple", "iPhone 15"},
	{"Google", "Pixel 8"},
	{"samsung", "SM-S911B"},
	{"FUJIFILM", "X-T5"},
	{"Canon", "Canon EOS R6"},
}
