// Package exif reads when, where and with what a photo was taken from its
// EXIF metadata: the time taken, the GPS position, the camera make and model
// and the orientation. It reads the encoded bytes only and never the pixels.
//
// Only EXIF is read (not XMP or IPTC), with github.com/bep/imagemeta, from
// JPEG, PNG and WebP images, the formats the service accepts that can carry
// EXIF. The work is bounded: at most maxTags tags are visited and tag values
// larger than maxTagSize bytes are skipped, so corrupt or hostile metadata
// costs little and never panics.
package exif

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/bep/imagemeta"

	"github.com/glimpse-oss/glimpse/internal/analyzer"
	"github.com/glimpse-oss/glimpse/internal/imagedata"
	"github.com/glimpse-oss/glimpse/internal/job"
)

// Bounds on the metadata walk. A camera JPEG has a few hundred EXIF tags and
// no value we read is longer than a few dozen bytes. The value size also
// bounds IFD pointer arrays (SubIFDs): at 256 bytes an array lists at most
// 64 IFDs, so a hostile segment whose thousand SubIFD offsets all point back
// at IFD0 cannot make the walk visit IFD0 a thousand times.
const (
	maxTags    = 2000
	maxTagSize = 256
)

// LocalTimeLayout is how TakenAt is written when the photo records no UTC
// offset: RFC 3339 without the offset (an ISO 8601 local date-time), which
// RFC 3339 itself does not allow. Such a time is the camera's wall clock in
// an unknown zone. With an offset TakenAt is full RFC 3339 (time.RFC3339).
const LocalTimeLayout = "2006-01-02T15:04:05"

// Analyzer answers job.FeatureEXIF. It keeps no state between calls and is
// safe for concurrent use.
type Analyzer struct{}

var _ analyzer.Analyzer = (*Analyzer)(nil)

// New returns an EXIF analyzer.
func New() *Analyzer { return &Analyzer{} }

// Feature returns job.FeatureEXIF.
func (a *Analyzer) Feature() job.Feature { return job.FeatureEXIF }

// MinSide returns analyzer.NoPixels: EXIF is read from the encoded bytes.
func (a *Analyzer) MinSide() int { return analyzer.NoPixels }

// Analyze sets res.EXIF from img.Bytes. An image without EXIF, in a format
// that carries none (GIF), or whose EXIF has none of the fields we report
// leaves res.EXIF nil and returns nil. Metadata too corrupt to yield any of
// them is an error; when some fields were read before the corruption, they
// are reported and the rest is dropped.
func (a *Analyzer) Analyze(ctx context.Context, img *analyzer.Image, res *job.Result) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("exif: %w", err)
	}
	e, err := Read(img.Header.Format, img.Bytes)
	switch {
	case e != nil:
		res.EXIF = e
	case err != nil:
		return err
	default:
		// Asked for and found none: an empty object, so that a caller
		// can tell "no metadata" from "not asked for".
		res.EXIF = &job.EXIF{}
	}
	return nil
}

// Read returns the EXIF fields of b, an image in format f. It returns nil and
// no error when b has no EXIF or none of the fields job.EXIF reports, and nil
// and an error when the metadata is corrupt and yields nothing; fields read
// before a corruption are returned without an error.
func Read(f imagedata.Format, b []byte) (*job.EXIF, error) {
	var mf imagemeta.ImageFormat
	switch f {
	case imagedata.JPEG:
		mf = imagemeta.JPEG
	case imagedata.PNG:
		mf = imagemeta.PNG
	case imagedata.WebP:
		mf = imagemeta.WebP
	default:
		return nil, nil
	}
	var t tags
	err := decode(mf, b, &t)
	e := t.result()
	if e != nil {
		return e, nil
	}
	if err != nil {
		return nil, fmt.Errorf("exif: reading metadata: %v", err)
	}
	return nil, nil
}

// decode walks the EXIF of b into t. imagemeta recovers its own panics; the
// recover here is a second line so that no input can take a worker down.
func decode(mf imagemeta.ImageFormat, b []byte, t *tags) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("decoder panic: %v", r)
		}
	}()
	_, err = imagemeta.Decode(imagemeta.Options{
		R:            bytes.NewReader(b),
		ImageFormat:  mf,
		Sources:      imagemeta.EXIF,
		LimitNumTags: maxTags,
		LimitTagSize: maxTagSize,
		ShouldHandleTag: func(ti imagemeta.TagInfo) bool {
			return wanted(ti.Namespace, ti.Tag)
		},
		HandleTag: func(ti imagemeta.TagInfo) error {
			t.set(ti.Tag, ti.Value)
			return nil
		},
		Warnf: t.warnf,
	})
	return err
}

// wanted reports whether the tag name in the IFD namespace ns is one we read.
// Tags of IFD1 (the thumbnail) and any other IFD are skipped.
func wanted(ns, tag string) bool {
	switch ns {
	case "IFD0":
		switch tag {
		case "Make", "Model", "Orientation", "ModifyDate", "OffsetTime":
			return true
		}
	case "IFD0/ExifIFDP":
		switch tag {
		case "DateTimeOriginal", "CreateDate", "OffsetTime", "OffsetTimeOriginal", "OffsetTimeDigitized":
			return true
		}
	case "IFD0/GPSInfoIFD":
		switch tag {
		case "GPSLatitude", "GPSLatitudeRef", "GPSLongitude", "GPSLongitudeRef", "GPSAltitude", "GPSAltitudeRef":
			return true
		}
	}
	return false
}

// tags collects the raw values of the wanted tags. Each is set only when it
// has the expected type; a value imagemeta could not convert (it warns and
// substitutes 0) is marked bad so that it is dropped rather than read as 0.
type tags struct {
	make, model                             string
	orientation                             int
	dateTime, dateTimeOriginal, createDate  string
	offset, offsetOriginal, offsetDigitized string
	lat, lon, alt                           float64
	hasLat, hasLon, hasAlt                  bool
	latRef, lonRef                          string
	altRef                                  int
	bad                                     map[string]bool
}

func (t *tags) set(tag string, v any) {
	switch tag {
	case "Make":
		t.make = text(v)
	case "Model":
		t.model = text(v)
	case "Orientation":
		t.orientation, _ = integer(v)
	case "ModifyDate": // tag 0x0132, DateTime in the EXIF standard
		t.dateTime = text(v)
	case "DateTimeOriginal":
		t.dateTimeOriginal = text(v)
	case "CreateDate":
		t.createDate = text(v)
	case "OffsetTime":
		t.offset = text(v)
	case "OffsetTimeOriginal":
		t.offsetOriginal = text(v)
	case "OffsetTimeDigitized":
		t.offsetDigitized = text(v)
	case "GPSLatitude":
		t.lat, t.hasLat = v.(float64)
	case "GPSLongitude":
		t.lon, t.hasLon = v.(float64)
	case "GPSLatitudeRef":
		t.latRef = strings.ToUpper(text(v))
	case "GPSLongitudeRef":
		t.lonRef = strings.ToUpper(text(v))
	case "GPSAltitude":
		if r, ok := v.(interface{ Float64() float64 }); ok {
			t.alt, t.hasAlt = r.Float64(), true
		}
	case "GPSAltitudeRef":
		t.altRef, _ = integer(v)
	}
}

// warnf records which tags imagemeta failed to convert; its warnings start
// with the tag name.
func (t *tags) warnf(format string, args ...any) {
	name, _, ok := strings.Cut(fmt.Sprintf(format, args...), ":")
	if !ok {
		return
	}
	if t.bad == nil {
		t.bad = map[string]bool{}
	}
	t.bad[name] = true
}

// result turns the collected tags into a job.EXIF, or nil when no field is
// usable.
func (t *tags) result() *job.EXIF {
	e := &job.EXIF{
		TakenAt: t.takenAt(),
		Make:    t.make,
		Model:   t.model,
	}
	if t.orientation >= 1 && t.orientation <= 8 {
		e.Orientation = t.orientation
	}
	if lat, lon, ok := t.position(); ok {
		e.Latitude, e.Longitude = &lat, &lon
	}
	if alt, ok := t.altitude(); ok {
		e.Altitude = &alt
	}
	if *e == (job.EXIF{}) {
		return nil
	}
	return e
}

// takenAt returns DateTimeOriginal, else DateTimeDigitized (CreateDate),
// else DateTime, each with its own offset tag or else OffsetTime. It is
// RFC 3339 when there is a valid offset and LocalTimeLayout otherwise, and
// empty when no date parses. Sub-second tags are not read: imagemeta turns
// them into integers, losing the leading zeros that give them their scale.
func (t *tags) takenAt() string {
	for _, c := range []struct{ date, offset string }{
		{t.dateTimeOriginal, firstOf(t.offsetOriginal, t.offset)},
		{t.createDate, firstOf(t.offsetDigitized, t.offset)},
		{t.dateTime, t.offset},
	} {
		tm, ok := parseDate(c.date)
		if !ok {
			continue
		}
		if zone, ok := parseOffset(c.offset); ok {
			return time.Date(tm.Year(), tm.Month(), tm.Day(), tm.Hour(), tm.Minute(), tm.Second(), 0, zone).Format(time.RFC3339)
		}
		return tm.Format(LocalTimeLayout)
	}
	return ""
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// dateLayouts are the EXIF date form and the variants seen in the wild.
var dateLayouts = []string{
	"2006:01:02 15:04:05",
	"2006-01-02 15:04:05",
	"2006:01:02T15:04:05",
	"2006-01-02T15:04:05",
}

// parseDate parses an EXIF date-time. Blank and all-zero placeholders
// ("0000:00:00 00:00:00", "    :  :     :  :  ") do not parse.
func parseDate(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	for _, l := range dateLayouts {
		if tm, err := time.Parse(l, s); err == nil {
			return tm, true
		}
	}
	return time.Time{}, false
}

// parseOffset parses an EXIF offset such as "+02:00", "-05:00" or "Z".
func parseOffset(s string) (*time.Location, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, false
	}
	tm, err := time.Parse("Z07:00", s)
	if err != nil {
		return nil, false
	}
	_, off := tm.Zone()
	if off <= -24*3600 || off >= 24*3600 {
		return nil, false
	}
	return time.FixedZone("", off), true
}

// position returns the signed latitude and longitude, only as a pair and only
// when both are in range. A missing reference counts as north or east (as
// exiftool reads it); any reference other than N, S, E or W drops the pair.
func (t *tags) position() (lat, lon float64, ok bool) {
	if !t.hasLat || !t.hasLon || t.bad["GPSLatitude"] || t.bad["GPSLongitude"] {
		return 0, 0, false
	}
	lat, lon = t.lat, t.lon
	switch t.latRef {
	case "", "N":
	case "S":
		lat = -lat
	default:
		return 0, 0, false
	}
	switch t.lonRef {
	case "", "E":
	case "W":
		lon = -lon
	default:
		return 0, 0, false
	}
	if !(math.Abs(lat) <= 90 && math.Abs(lon) <= 180) { // also rejects NaN
		return 0, 0, false
	}
	return lat, lon, true
}

// altitude returns metres above sea level, negative when GPSAltitudeRef is 1.
func (t *tags) altitude() (float64, bool) {
	if !t.hasAlt || math.IsNaN(t.alt) || math.IsInf(t.alt, 0) {
		return 0, false
	}
	if t.altRef == 1 {
		return -t.alt, true
	}
	return t.alt, true
}

// text returns a string tag value without NULs and surrounding spaces.
func text(v any) string {
	var s string
	switch v := v.(type) {
	case string:
		s = v
	case []byte:
		s = string(v)
	default:
		return ""
	}
	return strings.Trim(s, " \x00\t\r\n")
}

// integer returns an integer tag value.
func integer(v any) (int, bool) {
	switch v := v.(type) {
	case uint8:
		return int(v), true
	case uint16:
		return int(v), true
	case uint32:
		return int(v), true
	case int:
		return v, true
	case []byte:
		if len(v) == 1 {
			return int(v[0]), true
		}
	}
	return 0, false
}
