package analytics

import (
	"context"
	"io"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/glimpse-oss/glimpse/internal/store"
)

// parquetFact is one analytics row as a Parquet record: absent values are
// optional (null) columns; times are UTC timestamps in microseconds (an
// optional time is a nullable int64 of microseconds since 1970 UTC, named
// with a _us suffix, as parquet-go has no nullable timestamp type).
type parquetFact struct {
	ImageID       string    `parquet:"image_id"`
	Tenant        string    `parquet:"tenant"`
	Status        string    `parquet:"status"`
	Error         string    `parquet:"error"`
	Filename      string    `parquet:"filename"`
	Width         *int32    `parquet:"width,optional"`
	Height        *int32    `parquet:"height,optional"`
	CreatedAt     time.Time `parquet:"created_at,timestamp(microsecond)"`
	StartedAt     *int64    `parquet:"started_at_us,optional"`
	FinishedAt    time.Time `parquet:"finished_at,timestamp(microsecond)"`
	ProcessingMS  *int64    `parquet:"processing_ms,optional"`
	LatencyMS     *int64    `parquet:"latency_ms,optional"`
	TopLabel      string    `parquet:"top_label"`
	TopScore      *float64  `parquet:"top_score,optional"`
	Labels        string    `parquet:"labels"`
	Model         string    `parquet:"model"`
	QRText        string    `parquet:"qr_text"`
	QRHost        string    `parquet:"qr_host"`
	QRPath        string    `parquet:"qr_path"`
	Product       string    `parquet:"product"`
	QRCount       *int32    `parquet:"qr_count,optional"`
	TakenAt       *int64    `parquet:"taken_at_us,optional"`
	Lat           *float64  `parquet:"lat,optional"`
	Lon           *float64  `parquet:"lon,optional"`
	Place         string    `parquet:"place"`
	Camera        string    `parquet:"camera"`
	Faces         *int32    `parquet:"faces,optional"`
	DominantColor string    `parquet:"dominant_color"`
	Brightness    *float64  `parquet:"brightness,optional"`
	Saturation    *float64  `parquet:"saturation,optional"`
	Sharpness     *float64  `parquet:"sharpness,optional"`
	Blurry        *bool     `parquet:"blurry,optional"`
	Exposure      string    `parquet:"exposure"`
	Megapixels    *float64  `parquet:"megapixels,optional"`
}

func i32(p *int) *int32 {
	if p == nil {
		return nil
	}
	v := int32(*p)
	return &v
}

// micros is *p as microseconds since 1970 UTC, nil when p is.
func micros(p *time.Time) *int64 {
	if p == nil {
		return nil
	}
	v := p.UnixMicro()
	return &v
}

func toParquet(f *store.Fact) parquetFact {
	return parquetFact{
		ImageID: f.ImageID, Tenant: f.Tenant, Status: string(f.Status), Error: f.Error, Filename: f.Filename,
		Width: i32(f.Width), Height: i32(f.Height),
		CreatedAt: f.CreatedAt.UTC(), StartedAt: micros(f.StartedAt), FinishedAt: f.FinishedAt.UTC(),
		ProcessingMS: f.ProcessingMS, LatencyMS: f.LatencyMS,
		TopLabel: f.TopLabel, TopScore: f.TopScore, Labels: f.Labels, Model: f.Model,
		QRText: f.QRText, QRHost: f.QRHost, QRPath: f.QRPath, Product: f.Product, QRCount: i32(f.QRCount),
		TakenAt: micros(f.TakenAt), Lat: f.Lat, Lon: f.Lon, Place: f.Place, Camera: f.Camera,
		Faces: i32(f.Faces), DominantColor: f.DominantColor, Brightness: f.Brightness, Saturation: f.Saturation,
		Sharpness: f.Sharpness, Blurry: f.Blurry, Exposure: f.Exposure, Megapixels: f.Megapixels,
	}
}

// exportParquet streams the rows as one Parquet file (row groups of up to
// 64k rows, Snappy-compressed columns).
func exportParquet(ctx context.Context, db FactSource, w io.Writer, ff store.FactFilter) (int, error) {
	pw := parquet.NewGenericWriter[parquetFact](w, parquet.Compression(&parquet.Snappy))
	batch := make([]parquetFact, 0, 1024)
	n := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		_, err := pw.Write(batch)
		batch = batch[:0]
		return err
	}
	err := db.EachFact(ctx, ff, func(f *store.Fact) error {
		n++
		batch = append(batch, toParquet(f))
		if len(batch) == cap(batch) {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if cerr := pw.Close(); err == nil {
		err = cerr
	}
	return n, err
}
