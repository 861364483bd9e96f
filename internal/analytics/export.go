package analytics

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/glimpse-oss/glimpse/internal/store"
)

// Formats lists the export formats.
var Formats = []string{"csv", "jsonl", "parquet"}

// FactSource streams analytics rows. *store.DB satisfies it.
type FactSource interface {
	EachFact(ctx context.Context, ff store.FactFilter, fn func(*store.Fact) error) error
}

// Export writes the rows ff selects to w in format ("csv": a header of
// store.FactColumns, then one line per image, times RFC 3339 in UTC, absent
// values empty; "jsonl": one JSON object per line, absent values left out;
// "parquet": one Parquet file, absent values null).
// It returns the number of rows written.
func Export(ctx context.Context, db FactSource, w io.Writer, format string, ff store.FactFilter) (int, error) {
	bw := bufio.NewWriterSize(w, 1<<16)
	n := 0
	var err error
	switch format {
	case "csv":
		cw := csv.NewWriter(bw)
		if err := cw.Write(store.FactColumns); err != nil {
			return 0, err
		}
		err = db.EachFact(ctx, ff, func(f *store.Fact) error {
			n++
			return cw.Write(csvRow(f))
		})
		cw.Flush()
		if err == nil {
			err = cw.Error()
		}
	case "jsonl":
		enc := json.NewEncoder(bw)
		err = db.EachFact(ctx, ff, func(f *store.Fact) error {
			n++
			return enc.Encode(f)
		})
	case "parquet":
		n, err = exportParquet(ctx, db, bw, ff)
	default:
		return 0, fmt.Errorf("analytics: export format %q: want csv, jsonl or parquet", format)
	}
	if err != nil {
		return n, fmt.Errorf("analytics: export: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return n, fmt.Errorf("analytics: export: %w", err)
	}
	return n, nil
}

// csvRow is f's values in store.FactColumns order.
func csvRow(f *store.Fact) []string {
	return []string{
		f.ImageID, f.Tenant, string(f.Status), f.Error, f.Filename, cInt(f.Width), cInt(f.Height),
		cTime(&f.CreatedAt), cTime(f.StartedAt), cTime(&f.FinishedAt), cInt64(f.ProcessingMS), cInt64(f.LatencyMS),
		f.TopLabel, cFloat(f.TopScore), f.Labels, f.Model,
		f.QRText, f.QRHost, f.QRPath, f.Product, cInt(f.QRCount),
		cTime(f.TakenAt), cFloat(f.Lat), cFloat(f.Lon), f.Place, f.Camera,
		cInt(f.Faces), f.DominantColor, cFloat(f.Brightness), cFloat(f.Saturation), cFloat(f.Sharpness), cBool(f.Blurry), f.Exposure, cFloat(f.Megapixels),
	}
}

func cTime(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func cInt(p *int) string {
	if p == nil {
		return ""
	}
	return strconv.Itoa(*p)
}

func cInt64(p *int64) string {
	if p == nil {
		return ""
	}
	return strconv.FormatInt(*p, 10)
}

func cFloat(p *float64) string {
	if p == nil {
		return ""
	}
	return strconv.FormatFloat(*p, 'g', -1, 64)
}

func cBool(p *bool) string {
	if p == nil {
		return ""
	}
	return strconv.FormatBool(*p)
}
