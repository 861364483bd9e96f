package pump

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// EXIF is the metadata the pump writes into a photo.
type EXIF struct {
	Make, Model string
	// Orientation is the EXIF orientation, 1–8; 0 writes none.
	Orientation int
	// TakenAt is written as DateTimeOriginal in its own zone, with that
	// zone's offset as OffsetTimeOriginal; zero writes neither.
	TakenAt time.Time
	// GPS, when set, is the position written into the GPS IFD.
	GPS *GPS
}

// GPS is a position as EXIF stores it: each of latitude and longitude as
// degrees, minutes and seconds, the seconds in units of 1/SecondsDenom.
type GPS struct {
	LatRef, LonRef string // "N" or "S"; "E" or "W"
	Lat, Lon       [3]uint32
}

// SecondsDenom is the denominator of the seconds written: 1e-4″ is
// under 3e-8°, far finer than the 1e-6° a reader must get back.
const SecondsDenom = 10000

// NewGPS quantises a signed position to what EXIF will hold.
func NewGPS(lat, lon float64) (*GPS, error) {
	if math.IsNaN(lat) || math.IsNaN(lon) || math.Abs(lat) > 90 || math.Abs(lon) > 180 {
		return nil, fmt.Errorf("pump: position %g,%g is not on Earth", lat, lon)
	}
	g := &GPS{LatRef: "N", LonRef: "E"}
	if lat < 0 {
		g.LatRef = "S"
	}
	if lon < 0 {
		g.LonRef = "W"
	}
	g.Lat, g.Lon = dms(math.Abs(lat)), dms(math.Abs(lon))
	return g, nil
}

// dms splits non-negative degrees into whole degrees, whole minutes and
// seconds in 1/SecondsDenom, rounding once so no part overflows.
func dms(deg float64) [3]uint32 {
	const perMin = 60 * SecondsDenom
	const perDeg = 60 * perMin
	total := uint64(math.Round(deg * perDeg))
	return [3]uint32{uint32(total / perDeg), uint32(total % perDeg / perMin), uint32(total % perMin)}
}

// Degrees returns the signed latitude and longitude g holds, as a reader
// computes them.
func (g *GPS) Degrees() (lat, lon float64) {
	f := func(v [3]uint32) float64 {
		return float64(v[0]) + float64(v[1])/60 + float64(v[2])/SecondsDenom/3600
	}
	lat, lon = f(g.Lat), f(g.Lon)
	if g.LatRef == "S" {
		lat = -lat
	}
	if g.LonRef == "W" {
		lon = -lon
	}
	return lat, lon
}

// TIFF field types.
const (
	typeByte      = 1
	typeASCII     = 2
	typeShort     = 3
	typeLong      = 4
	typeRational  = 5
	typeUndefined = 7
)

// entry is one IFD entry; data is its value already in byte order.
type entry struct {
	tag   uint16
	typ   uint16
	count uint32
	data  []byte
	// sub, when set, is an IFD the entry points to (its value is the
	// offset, filled in at layout).
	sub *ifd
}

type ifd struct{ entries []entry }

var order = binary.LittleEndian

func ascii(tag uint16, s string) entry {
	b := append([]byte(s), 0)
	return entry{tag: tag, typ: typeASCII, count: uint32(len(b)), data: b}
}

func short(tag uint16, v uint16) entry {
	return entry{tag: tag, typ: typeShort, count: 1, data: order.AppendUint16(nil, v)}
}

func rationals(tag uint16, vs [3]uint32, denoms [3]uint32) entry {
	var b []byte
	for i := range vs {
		b = order.AppendUint32(b, vs[i])
		b = order.AppendUint32(b, denoms[i])
	}
	return entry{tag: tag, typ: typeRational, count: 3, data: b}
}

// size is the bytes the IFD takes: its entries, the next-IFD offset, and
// the values that do not fit in four bytes (each padded to even length).
func (d *ifd) size() int {
	n := 2 + 12*len(d.entries) + 4
	for _, e := range d.entries {
		if len(e.data) > 4 {
			n += len(e.data) + len(e.data)%2
		}
	}
	return n
}

// write appends d at offset off (from the TIFF header) and then its
// sub-IFDs, each after the one before.
func (d *ifd) write(buf *bytes.Buffer, off int) {
	// Lay out the sub-IFDs first so their offsets are known.
	next := off + d.size()
	subOff := map[*ifd]int{}
	for _, e := range d.entries {
		if e.sub != nil {
			subOff[e.sub] = next
			next += e.sub.totalSize()
		}
	}
	var head, extra []byte
	head = order.AppendUint16(head, uint16(len(d.entries)))
	dataOff := off + 2 + 12*len(d.entries) + 4
	for _, e := range d.entries {
		head = order.AppendUint16(head, e.tag)
		head = order.AppendUint16(head, e.typ)
		head = order.AppendUint32(head, e.count)
		switch {
		case e.sub != nil:
			head = order.AppendUint32(head, uint32(subOff[e.sub]))
		case len(e.data) <= 4:
			v := make([]byte, 4)
			copy(v, e.data)
			head = append(head, v...)
		default:
			head = order.AppendUint32(head, uint32(dataOff+len(extra)))
			extra = append(extra, e.data...)
			if len(e.data)%2 == 1 {
				extra = append(extra, 0)
			}
		}
	}
	head = order.AppendUint32(head, 0) // no next IFD
	buf.Write(head)
	buf.Write(extra)
	for _, e := range d.entries {
		if e.sub != nil {
			e.sub.write(buf, subOff[e.sub])
		}
	}
}

func (d *ifd) totalSize() int {
	n := d.size()
	for _, e := range d.entries {
		if e.sub != nil {
			n += e.sub.totalSize()
		}
	}
	return n
}

// APP1 returns the complete APP1 segment (marker, length, "Exif\0\0" and a
// little-endian TIFF structure) holding e: IFD0 with Make, Model and
// Orientation; an Exif IFD with DateTimeOriginal and OffsetTimeOriginal; a
// GPS IFD with the position. Entries are in ascending tag order.
func (e EXIF) APP1() ([]byte, error) {
	if e.Orientation < 0 || e.Orientation > 8 {
		return nil, fmt.Errorf("pump: exif orientation %d: want 1 to 8", e.Orientation)
	}
	ifd0 := &ifd{}
	if e.Make != "" {
		ifd0.entries = append(ifd0.entries, ascii(0x010F, e.Make))
	}
	if e.Model != "" {
		ifd0.entries = append(ifd0.entries, ascii(0x0110, e.Model))
	}
	if e.Orientation > 0 {
		ifd0.entries = append(ifd0.entries, short(0x0112, uint16(e.Orientation)))
	}
	if !e.TakenAt.IsZero() {
		exif := &ifd{entries: []entry{
			{tag: 0x9000, typ: typeUndefined, count: 4, data: []byte("0232")},
			ascii(0x9003, e.TakenAt.Format("2006:01:02 15:04:05")),
			ascii(0x9011, e.TakenAt.Format("-07:00")),
		}}
		ifd0.entries = append(ifd0.entries, entry{tag: 0x8769, typ: typeLong, count: 1, sub: exif})
	}
	if g := e.GPS; g != nil {
		den := [3]uint32{1, 1, SecondsDenom}
		gps := &ifd{entries: []entry{
			{tag: 0x0000, typ: typeByte, count: 4, data: []byte{2, 3, 0, 0}},
			ascii(0x0001, g.LatRef),
			rationals(0x0002, g.Lat, den),
			ascii(0x0003, g.LonRef),
			rationals(0x0004, g.Lon, den),
		}}
		ifd0.entries = append(ifd0.entries, entry{tag: 0x8825, typ: typeLong, count: 1, sub: gps})
	}
	var tiff bytes.Buffer
	tiff.WriteString("II")
	tiff.Write(order.AppendUint16(nil, 42))
	tiff.Write(order.AppendUint32(nil, 8))
	ifd0.write(&tiff, 8)

	n := 2 + 6 + tiff.Len() // length field counts itself
	if n > 0xFFFF {
		return nil, errors.New("pump: exif segment is over 64 KiB")
	}
	seg := []byte{0xFF, 0xE1, byte(n >> 8), byte(n)}
	seg = append(seg, "Exif\x00\x00"...)
	return append(seg, tiff.Bytes()...), nil
}

// InsertSegment puts seg right after the SOI marker of a JPEG.
func InsertSegment(jpg, seg []byte) ([]byte, error) {
	if len(jpg) < 4 || jpg[0] != 0xFF || jpg[1] != 0xD8 {
		return nil, errors.New("pump: not a JPEG (no SOI marker)")
	}
	out := make([]byte, 0, len(jpg)+len(seg))
	out = append(out, jpg[:2]...)
	out = append(out, seg...)
	return append(out, jpg[2:]...), nil
}
