package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/glimpse-oss/glimpse/internal/store"
)

// Stats is the part of the store the /v1/stats routes read: the analytics
// queries. *store.DB satisfies it. The routes are registered only when
// Deps.Store implements it too, so that a store without analytics (the
// tests' fakes) serves everything else.
type Stats interface {
	Throughput(ctx context.Context, q store.StatsQuery) ([]store.ThroughputBucket, error)
	CountBy(ctx context.Context, q store.StatsQuery, d store.Dimension, top int) ([]store.Count, error)
	FailureReasons(ctx context.Context, q store.StatsQuery, limit int) ([]store.ReasonCount, error)
	Backlog(ctx context.Context, q store.StatsQuery) ([]store.BacklogBucket, error)
}

// Limits of the stats queries.
const (
	maxStatsBuckets = 10000
	defaultStatsTop = 20
	maxStatsTop     = 1000
)

// statsRange is the query string every stats route takes. Values are
// parsed by hand so that a bad one is a 400 naming it.
type statsRange struct {
	Bucket string `query:"bucket" doc:"Bucket width: minute, hour or day (UTC)"`
	From   string `query:"from" doc:"Start, inclusive: RFC 3339 time or YYYY-MM-DD (UTC). Default: 60 minutes, 48 hours or 30 days before to"`
	To     string `query:"to" doc:"End, exclusive: RFC 3339 time or YYYY-MM-DD (UTC). Default: now"`
}

// countInput is a stats route that counts by a dimension. (huma reads no
// fields of an embedded unexported struct, hence the repetition.)
type countInput struct {
	Bucket string `query:"bucket" doc:"Bucket width: minute, hour or day (UTC)"`
	From   string `query:"from" doc:"Start, inclusive: RFC 3339 time or YYYY-MM-DD (UTC). Default: 60 minutes, 48 hours or 30 days before to"`
	To     string `query:"to" doc:"End, exclusive: RFC 3339 time or YYYY-MM-DD (UTC). Default: now"`
	Time   string `query:"time" doc:"Which time puts an image in a bucket: finished (its outcome, default) or taken (EXIF time taken; images without one are left out)"`
	Top    string `query:"top" doc:"Keep the top N values over the whole range (1-1000, default 20)"`
}

// ThroughputBucket is one bucket of /v1/stats/throughput.
type ThroughputBucket struct {
	T      time.Time `json:"t" doc:"Bucket start (UTC)"`
	Done   int64     `json:"done" doc:"Images done in the bucket"`
	Failed int64     `json:"failed" doc:"Images failed in the bucket"`
	P50MS  float64   `json:"p50_ms" doc:"Median processing time of the images done, in ms (log histogram, within ±2.2%)"`
	P99MS  float64   `json:"p99_ms" doc:"99th percentile processing time of the images done, in ms"`
}

// LabelCount is one cell of /v1/stats/labels.
type LabelCount struct {
	T     time.Time `json:"t" doc:"Bucket start (UTC)"`
	Label string    `json:"label" doc:"Top label, lower-cased"`
	Count int64     `json:"count"`
}

// ProductCount is one cell of /v1/stats/products.
type ProductCount struct {
	T       time.Time `json:"t" doc:"Bucket start (UTC)"`
	Product string    `json:"product" doc:"Host and path of the image's QR code URL" example:"shop.example/p/0001/walnut-lamp"`
	Count   int64     `json:"count"`
}

// PlaceCount is one cell of /v1/stats/places.
type PlaceCount struct {
	T     time.Time `json:"t" doc:"Bucket start (UTC)"`
	Place string    `json:"place" doc:"Nearest known city within 50 km, else a 1° grid cell grid:LAT,LON (south-west corner)" example:"Paris"`
	Count int64     `json:"count"`
}

// ReasonCount is one failure reason of /v1/stats/failures.
type ReasonCount struct {
	Reason string `json:"reason"`
	Count  int64  `json:"count"`
}

// BacklogBucket is one bucket of /v1/stats/backlog.
type BacklogBucket struct {
	T       time.Time `json:"t" doc:"Bucket start (UTC)"`
	Backlog int64     `json:"backlog" doc:"Largest backlog sampled in the bucket (jobs waiting or in progress, all tenants)"`
	Workers int64     `json:"workers" doc:"Largest worker count sampled in the bucket"`
}

type bucketsOutput[T any] struct {
	Body struct {
		Buckets []T `json:"buckets" nullable:"false"`
	}
}

type failuresOutput struct {
	Body struct {
		Reasons []ReasonCount `json:"reasons" nullable:"false"`
	}
}

// registerStats adds the /v1/stats routes when the store has analytics.
func (s *Server) registerStats() {
	st, ok := statsOf(s.deps.Store)
	if !ok {
		return
	}
	auth := huma.Middlewares{s.authenticate}
	sec := s.security()
	op := func(id, path, summary, desc string) huma.Operation {
		return huma.Operation{
			OperationID: id, Method: http.MethodGet, Path: path, Summary: summary, Description: desc,
			Tags: []string{"stats"}, Security: sec, Middlewares: auth,
			Errors: []int{http.StatusBadRequest, http.StatusUnauthorized},
		}
	}

	huma.Register(s.api, op("stats-throughput", "/v1/stats/throughput", "Images done and failed over time",
		"Per bucket of finish time: images done and failed, and the median and 99th percentile processing time of those done. "+
			"Default bucket: hour."),
		func(ctx context.Context, in *statsRange) (*bucketsOutput[ThroughputBucket], error) {
			q, err := in.query(ctx, store.Hour, time.Now())
			if err != nil {
				return nil, err
			}
			rows, err := st.Throughput(ctx, q)
			if err != nil {
				return nil, s.statsErr(ctx, err)
			}
			out := &bucketsOutput[ThroughputBucket]{}
			out.Body.Buckets = make([]ThroughputBucket, len(rows))
			for i, r := range rows {
				out.Body.Buckets[i] = ThroughputBucket{T: r.T, Done: r.Done, Failed: r.Failed, P50MS: r.P50MS, P99MS: r.P99MS}
			}
			return out, nil
		})

	count := func(ctx context.Context, in *countInput, d store.Dimension) ([]store.Count, error) {
		r := statsRange{Bucket: in.Bucket, From: in.From, To: in.To}
		q, err := r.query(ctx, store.Day, time.Now())
		if err != nil {
			return nil, err
		}
		switch strings.ToLower(in.Time) {
		case "", "finished":
			q.Axis = store.ByFinished
		case "taken":
			q.Axis = store.ByTaken
		default:
			return nil, huma.Error400BadRequest(fmt.Sprintf("time must be finished or taken, not %q", truncate(in.Time, 64)))
		}
		top := defaultStatsTop
		if in.Top != "" {
			n, err := strconv.Atoi(in.Top)
			if err != nil || n < 1 || n > maxStatsTop {
				return nil, huma.Error400BadRequest(fmt.Sprintf("top must be a whole number from 1 to %d, not %q", maxStatsTop, truncate(in.Top, 64)))
			}
			top = n
		}
		rows, err := st.CountBy(ctx, q, d, top)
		if err != nil {
			return nil, s.statsErr(ctx, err)
		}
		return rows, nil
	}
	const countDesc = " per bucket (default: day) of finish time, or of the time the photo was taken with time=taken; " +
		"only the top values over the whole range (top, default 20). Cells are ordered by time, then count."

	huma.Register(s.api, op("stats-labels", "/v1/stats/labels", "Images by top label over time",
		"Images counted by their top label"+countDesc),
		func(ctx context.Context, in *countInput) (*bucketsOutput[LabelCount], error) {
			rows, err := count(ctx, in, store.ByLabel)
			if err != nil {
				return nil, err
			}
			out := &bucketsOutput[LabelCount]{}
			out.Body.Buckets = make([]LabelCount, len(rows))
			for i, r := range rows {
				out.Body.Buckets[i] = LabelCount{T: r.T, Label: r.Value, Count: r.Count}
			}
			return out, nil
		})

	huma.Register(s.api, op("stats-products", "/v1/stats/products", "Images by QR product over time",
		"Images counted by the host and path of their QR code URL"+countDesc),
		func(ctx context.Context, in *countInput) (*bucketsOutput[ProductCount], error) {
			rows, err := count(ctx, in, store.ByProduct)
			if err != nil {
				return nil, err
			}
			out := &bucketsOutput[ProductCount]{}
			out.Body.Buckets = make([]ProductCount, len(rows))
			for i, r := range rows {
				out.Body.Buckets[i] = ProductCount{T: r.T, Product: r.Value, Count: r.Count}
			}
			return out, nil
		})

	huma.Register(s.api, op("stats-places", "/v1/stats/places", "Images by place over time",
		"Images counted by where they were taken (EXIF GPS): the nearest city of a built-in list within 50 km, "+
			"else a 1° grid cell"+countDesc),
		func(ctx context.Context, in *countInput) (*bucketsOutput[PlaceCount], error) {
			rows, err := count(ctx, in, store.ByPlace)
			if err != nil {
				return nil, err
			}
			out := &bucketsOutput[PlaceCount]{}
			out.Body.Buckets = make([]PlaceCount, len(rows))
			for i, r := range rows {
				out.Body.Buckets[i] = PlaceCount{T: r.T, Place: r.Value, Count: r.Count}
			}
			return out, nil
		})

	huma.Register(s.api, op("stats-failures", "/v1/stats/failures", "Why images failed",
		"Failed images in the range of finish time, counted by reason, most frequent first (at most 50)."),
		func(ctx context.Context, in *statsRange) (*failuresOutput, error) {
			q, err := in.query(ctx, store.Day, time.Now())
			if err != nil {
				return nil, err
			}
			rows, err := st.FailureReasons(ctx, q, 50)
			if err != nil {
				return nil, s.statsErr(ctx, err)
			}
			out := &failuresOutput{}
			out.Body.Reasons = make([]ReasonCount, len(rows))
			for i, r := range rows {
				out.Body.Reasons[i] = ReasonCount{Reason: r.Reason, Count: r.Count}
			}
			return out, nil
		})

	huma.Register(s.api, op("stats-backlog", "/v1/stats/backlog", "Queue backlog and workers over time",
		"Per bucket (default: minute), the largest backlog of the job queue and the largest worker count that the "+
			"API processes sampled (every 5 s). The queue is shared, so this is the same for every tenant."),
		func(ctx context.Context, in *statsRange) (*bucketsOutput[BacklogBucket], error) {
			q, err := in.query(ctx, store.Minute, time.Now())
			if err != nil {
				return nil, err
			}
			rows, err := st.Backlog(ctx, q)
			if err != nil {
				return nil, s.statsErr(ctx, err)
			}
			out := &bucketsOutput[BacklogBucket]{}
			out.Body.Buckets = make([]BacklogBucket, len(rows))
			for i, r := range rows {
				out.Body.Buckets[i] = BacklogBucket{T: r.T, Backlog: r.Backlog, Workers: r.Workers}
			}
			return out, nil
		})
}

// statsOf finds the analytics queries behind st, looking through the
// wrappers New puts around Deps.Store.
func statsOf(st Store) (Stats, bool) {
	for {
		if x, ok := st.(Stats); ok {
			return x, true
		}
		w, ok := st.(announcingStore)
		if !ok {
			return nil, false
		}
		st = w.Store
	}
}

// query checks the range parameters and makes the store query for the
// caller's tenant; def is the bucket when none is given.
func (in *statsRange) query(ctx context.Context, def store.Bucket, now time.Time) (store.StatsQuery, error) {
	q := store.StatsQuery{Tenant: tenantOf(ctx), Bucket: def}
	if in.Bucket != "" {
		q.Bucket = store.Bucket(strings.ToLower(in.Bucket))
		if q.Bucket.Duration() == 0 {
			return q, huma.Error400BadRequest(fmt.Sprintf("bucket must be minute, hour or day, not %q", truncate(in.Bucket, 64)))
		}
	}
	var err error
	q.To = now.UTC()
	if in.To != "" {
		if q.To, err = parseStatsTime(in.To); err != nil {
			return q, huma.Error400BadRequest(fmt.Sprintf("to: %v", err))
		}
	}
	defaults := map[store.Bucket]time.Duration{store.Minute: time.Hour, store.Hour: 48 * time.Hour, store.Day: 30 * 24 * time.Hour}
	q.From = q.To.Add(-defaults[q.Bucket])
	if in.From != "" {
		if q.From, err = parseStatsTime(in.From); err != nil {
			return q, huma.Error400BadRequest(fmt.Sprintf("from: %v", err))
		}
	}
	if !q.From.Before(q.To) {
		return q, huma.Error400BadRequest("from must be before to")
	}
	if n := q.To.Sub(q.From) / q.Bucket.Duration(); n > maxStatsBuckets {
		return q, huma.Error400BadRequest(fmt.Sprintf("the range holds %d %s buckets; at most %d: use a wider bucket or a shorter range", n, q.Bucket, maxStatsBuckets))
	}
	return q, nil
}

// parseStatsTime reads an RFC 3339 time or a UTC day.
func parseStatsTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time (2024-05-01T00:00:00Z) nor a day (2024-05-01)", truncate(s, 64))
}

// statsErr maps a store error of a stats query to a problem.
func (s *Server) statsErr(ctx context.Context, err error) error {
	if errors.Is(err, store.ErrBadQuery) {
		return huma.Error400BadRequest(strings.TrimPrefix(err.Error(), "store: "))
	}
	return s.internalErr(ctx, "reading stats", err)
}
