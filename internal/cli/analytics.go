package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"gocloud.dev/blob"
	_ "gocloud.dev/blob/fileblob" // file:// buckets
	_ "gocloud.dev/blob/s3blob"   // s3:// buckets
	"golang.org/x/sync/errgroup"

	"github.com/glimpse-oss/glimpse/internal/analytics"
	"github.com/glimpse-oss/glimpse/internal/queue"
	"github.com/glimpse-oss/glimpse/internal/store"
)

// runAnalytics is the API's analytics actor: the loader, which keeps the
// analytics rows up to date from the results stream through the durable
// consumer queue.AnalyticsConsumer, and the backlog sampler. It never fails
// the API: errors are logged and retried until ctx ends.
func runAnalytics(ctx context.Context, log *slog.Logger, reg *prometheus.Registry, eng *engines) error {
	log = log.With("component", "analytics")
	var (
		c   *queue.OutcomeConsumer
		err error
	)
	for {
		if c, err = eng.q.ResultsConsumer(ctx, queue.AnalyticsConsumer); err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		log.Warn("analytics consumer unavailable; retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(5 * time.Second):
		}
	}
	loader, err := analytics.NewLoader(analytics.LoaderConfig{Logger: log, Registerer: reg}, eng.db, c)
	if err != nil {
		return err
	}
	sampler, err := analytics.NewSampler(analytics.SamplerConfig{Logger: log, Workers: gaugeSum(reg, "glimpse_workers")}, eng.db, eng.q)
	if err != nil {
		return err
	}
	grp, gctx := errgroup.WithContext(ctx)
	grp.Go(func() error { return loader.Run(gctx) })
	grp.Go(func() error { return sampler.Run(gctx) })
	return grp.Wait()
}

// gaugeSum returns a function that sums the gauge name in g (0 when this
// process has none, e.g. an api process without workers).
func gaugeSum(g prometheus.Gatherer, name string) func() int {
	return func() int {
		mfs, err := g.Gather()
		if err != nil {
			return 0
		}
		sum := 0.0
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, m := range mf.GetMetric() {
				sum += m.GetGauge().GetValue()
			}
		}
		return int(sum)
	}
}

// analyticsFlags locate the store and the blobs, as serve's do.
type analyticsFlags struct {
	data    string
	blobURL string
	dbURL   string
}

func (f *analyticsFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.data, "data", "./data", "data directory of an embedded serve (its blobs and SQLite store)")
	fl.StringVar(&f.blobURL, "blob", "", "blob store URL: file:///dir or s3://bucket?… (default: files under --data)")
	fl.StringVar(&f.dbURL, "db", "", "database URL: sqlite:///path.db or postgres://… (default: SQLite under --data)")
}

func (f *analyticsFlags) openStore(ctx context.Context) (*store.DB, error) {
	dbURL := f.dbURL
	if dbURL == "" {
		dir, err := filepath.Abs(f.data)
		if err != nil {
			return nil, err
		}
		path := filepath.Join(dir, "glimpse.db")
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("no store at %s (give --data or --db): %w", path, err)
		}
		dbURL = "sqlite://" + path
	}
	return store.Open(ctx, dbURL)
}

func (f *analyticsFlags) openBucket(ctx context.Context) (*blob.Bucket, error) {
	u := f.blobURL
	if u == "" {
		dir, err := filepath.Abs(filepath.Join(f.data, "blobs"))
		if err != nil {
			return nil, err
		}
		u = "file://" + filepath.ToSlash(dir)
	}
	b, err := blob.OpenBucket(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("open blobs %s: %w", redact(u), err)
	}
	return b, nil
}

func newAnalyticsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "analytics",
		Short: "Rebuild and export the analytics tables",
		Long: `The API keeps the analytics tables (analytics_images: one row per image with its result
flattened into columns; analytics_backlog: queue samples) up to date from the results stream,
and serves them at /v1/stats/…. BI tools can read the tables and the views analytics_images_v,
analytics_daily_throughput, analytics_daily_labels, analytics_daily_products,
analytics_daily_places and analytics_failures directly.`,
	}
	cmd.AddCommand(newAnalyticsBackfillCmd(g), newAnalyticsExportCmd(g))
	return cmd
}

func newAnalyticsBackfillCmd(g *globals) *cobra.Command {
	f := &analyticsFlags{}
	cmd := &cobra.Command{
		Use:   "backfill",
		Short: "Rebuild the analytics rows from the result documents in blob storage",
		Long: `backfill reads every results/<id>.json in blob storage (the source of truth) and the store's
failed images, and upserts their analytics rows. It is idempotent and safe while serve or api
run: rows are keyed by image id, so nothing is counted twice.`,
		Example: `  glimpse analytics backfill --data ./data
  glimpse analytics backfill --blob 's3://glimpse?region=us-east-1' --db postgres://glimpse@db/glimpse`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			db, err := f.openStore(ctx)
			if err != nil {
				return err
			}
			defer db.Close()
			b, err := f.openBucket(ctx)
			if err != nil {
				return err
			}
			defer b.Close()
			start := time.Now()
			st, err := analytics.Backfill(ctx, db, b, nil)
			if err != nil {
				return err
			}
			out, _ := json.Marshal(struct {
				analytics.BackfillStats
				Seconds float64 `json:"seconds"`
			}{st, time.Since(start).Seconds()})
			fmt.Fprintf(g.stdout, "%s\n", out)
			return nil
		},
	}
	f.register(cmd)
	return cmd
}

func newAnalyticsExportCmd(g *globals) *cobra.Command {
	f := &analyticsFlags{}
	var format, since, until, tenant, out string
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write the analytics rows as CSV or JSON lines",
		Long: `export writes one line per image (the columns of analytics_images) that finished in
[--since, --until), oldest first, for loading into a warehouse or a BI tool.`,
		Example: `  glimpse analytics export --format csv --since 2024-05-01 > images.csv
  glimpse analytics export --format jsonl --since 24h --tenant acme --out acme.jsonl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			ff := store.FactFilter{Tenant: tenant}
			var err error
			if ff.Since, err = parseSince(since, time.Now()); err != nil {
				return fmt.Errorf("--since: %w", err)
			}
			if ff.Until, err = parseSince(until, time.Now()); err != nil {
				return fmt.Errorf("--until: %w", err)
			}
			format = strings.ToLower(format)
			db, err := f.openStore(ctx)
			if err != nil {
				return err
			}
			defer db.Close()
			var (
				w    io.Writer = g.stdout
				file *os.File
			)
			if out != "" && out != "-" {
				if file, err = os.Create(out); err != nil {
					return err
				}
				defer file.Close()
				w = file
			}
			n, err := analytics.Export(ctx, db, w, format, ff)
			if err != nil {
				return err
			}
			if file != nil {
				if err := file.Close(); err != nil {
					return err
				}
			}
			fmt.Fprintf(g.stderr, "exported %d rows\n", n)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&format, "format", "csv", "output format: "+strings.Join(analytics.Formats, " or "))
	fl.StringVar(&since, "since", "", "only images finished at or after: RFC 3339 time, YYYY-MM-DD (UTC) or a duration ago (24h)")
	fl.StringVar(&until, "until", "", "only images finished before: same forms as --since")
	fl.StringVar(&tenant, "tenant", "", "only this tenant's images (default: all)")
	fl.StringVar(&out, "out", "", "file to write (default: standard output)")
	f.register(cmd)
	return cmd
}

// parseSince reads an RFC 3339 time, a UTC day or a duration before now;
// "" is the zero time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time, a day (2024-05-01) or a duration (24h)", s)
}
