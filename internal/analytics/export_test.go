package analytics

import (
	"bytes"
	"context"
	"encoding/csv"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/glimpse-oss/glimpse/internal/job"
	"github.com/glimpse-oss/glimpse/internal/store"
)

// facts is a FactSource over a slice.
type facts []*store.Fact

func (fs facts) EachFact(_ context.Context, _ store.FactFilter, fn func(*store.Fact) error) error {
	for _, f := range fs {
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

func testFacts() facts {
	t0 := time.Date(2024, 5, 17, 12, 0, 0, 0, time.UTC)
	return facts{
		{ImageID: "img_a", Tenant: "acme", Status: job.StatusDone, CreatedAt: t0, FinishedAt: t0.Add(time.Second),
			TopLabel: "tabby", TopScore: ptr(0.7), Labels: "tabby|tiger cat", Width: ptr(640), Height: ptr(480),
			QRText: "https://shop.example/p/1", Product: "shop.example/p/1", TakenAt: ptr(t0.Add(-time.Hour)),
			Lat: ptr(48.85), Lon: ptr(2.35), Place: "Paris", Faces: ptr(2), Blurry: ptr(false)},
		{ImageID: "img_b", Tenant: "acme", Status: job.StatusFailed, Error: "corrupt", CreatedAt: t0, FinishedAt: t0.Add(2 * time.Second)},
	}
}

func TestExportFormats(t *testing.T) {
	ctx := context.Background()
	for _, format := range Formats {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			n, err := Export(ctx, testFacts(), &buf, format, store.FactFilter{})
			if err != nil || n != 2 {
				t.Fatalf("Export(%s) = %d, %v; want 2 rows", format, n, err)
			}
			switch format {
			case "csv":
				rows, err := csv.NewReader(&buf).ReadAll()
				if err != nil || len(rows) != 3 || rows[1][0] != "img_a" {
					t.Errorf("csv = %v, %v; want a header and 2 rows", rows, err)
				}
			case "jsonl":
				if lines := strings.Count(buf.String(), "\n"); lines != 2 {
					t.Errorf("jsonl has %d lines; want 2", lines)
				}
			case "parquet":
				rows, err := parquet.Read[parquetFact](bytes.NewReader(buf.Bytes()), int64(buf.Len()))
				if err != nil || len(rows) != 2 {
					t.Fatalf("parquet read = %d rows, %v; want 2", len(rows), err)
				}
				a, b := rows[0], rows[1]
				if a.ImageID != "img_a" || a.TopLabel != "tabby" || a.TopScore == nil || *a.TopScore != 0.7 ||
					a.Faces == nil || *a.Faces != 2 || a.TakenAt == nil || *a.TakenAt != time.Date(2024, 5, 17, 11, 0, 0, 0, time.UTC).UnixMicro() ||
					a.Lat == nil || *a.Lat != 48.85 || a.Blurry == nil || *a.Blurry {
					t.Errorf("parquet row a = %+v; want the values written", a)
				}
				if b.Status != "failed" || b.Error != "corrupt" || b.TopScore != nil || b.Faces != nil || b.TakenAt != nil || b.StartedAt != nil {
					t.Errorf("parquet row b = %+v; want nulls for absent values", b)
				}
			}
		})
	}
	if _, err := Export(ctx, testFacts(), &bytes.Buffer{}, "xlsx", store.FactFilter{}); err == nil {
		t.Error("unknown format accepted")
	}
}
