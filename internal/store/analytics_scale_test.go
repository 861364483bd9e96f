package store

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/glimpse-oss/glimpse/internal/job"
)

// TestAnalyticsScale measures the stats queries and filtered lists over a
// store of GLIMPSE_ANALYTICS_SCALE images (e.g. 1000000) generated directly
// in SQL, on SQLite and PostgreSQL (a fresh schema). It is off by default:
//
//	GLIMPSE_ANALYTICS_SCALE=1000000 go test -tags turbojpeg ./internal/store -run AnalyticsScale -v -timeout 30m
func TestAnalyticsScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("GLIMPSE_ANALYTICS_SCALE"))
	if n <= 0 {
		t.Skip("set GLIMPSE_ANALYTICS_SCALE=1000000 to run")
	}
	t.Run("sqlite", func(t *testing.T) { runScale(t, openTestSQLite(t), n) })
	t.Run("postgres", func(t *testing.T) {
		db, err := Open(context.Background(), testPostgresDSN()+"&search_path="+testSchema(t))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		runScale(t, db, n)
	})
}

// scaleBase is the first creation time of the generated images: a month of
// them follows.
var scaleBase = time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)

// generate fills the store with n images of tenants bench (9 in 10) and
// other over May 2024: images, their label rows and their analytics rows.
func generate(t *testing.T, db *DB, n int) {
	ctx := context.Background()
	step := (30 * 24 * time.Hour).Microseconds() / int64(n)
	// seq yields i in [0, n); ts(x) turns unix microseconds into a time.
	seq := fmt.Sprintf(`(WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < %d) SELECT i FROM s) g`, n-1)
	ts := func(x string) string { return x }
	hex := `printf('%024x', g.i)`
	pad := `printf('%04d', g.i % 50)`
	if db.d.nativeTime {
		seq = fmt.Sprintf(`generate_series(0::bigint, %d) AS g(i)`, n-1)
		ts = func(x string) string { return `to_timestamp((` + x + `) / 1000000.0)` }
		hex = `lpad(to_hex(g.i), 24, '0')`
		pad = `lpad((g.i % 50)::text, 4, '0')`
	}
	base := scaleBase.UnixMicro()
	created := fmt.Sprintf("(%d + g.i * %d)", base, step)
	ms := "(50 + g.i % 400)"
	finished := fmt.Sprintf("(%s + 1000000 + %s * 1000)", created, ms)
	tenant := `CASE WHEN (g.i / 7) % 10 = 0 THEN 'other' ELSE 'bench' END`
	label := `'label-' || ((g.i * 7919) % 1000)`
	status := `CASE WHEN g.i % 50 = 7 THEN 'failed' ELSE 'done' END`
	// The log-histogram bins of 50..449 ms, from a small table.
	var bins []string
	for m := 50; m < 450; m++ {
		bins = append(bins, fmt.Sprintf("(%d, %d)", m, MSBin(int64(m))))
	}
	stmts := []string{
		`CREATE TEMPORARY TABLE scale_bins (ms INTEGER PRIMARY KEY, bin INTEGER)`,
		`INSERT INTO scale_bins VALUES ` + strings.Join(bins, ", "),
		`INSERT INTO images (id, tenant, filename, content_type, size, sha256, width, height, features, status, error,
			attempts, created_at, updated_at, started_at, finished_at, qr_url)
		 SELECT 'img_' || ` + hex + `, ` + tenant + `, 'pump.jpg', 'image/jpeg', 100000, '', 640, 480, 'labels,qr', ` + status + `,
			CASE WHEN g.i % 50 = 7 THEN 'decode: corrupt' ELSE '' END, 1, ` + ts(created) + `, ` + ts(finished) + `,
			` + ts(created+" + 1000000") + `, ` + ts(finished) + `, 'https://shop.example/p/' || ` + pad + `
		 FROM ` + seq,
		`INSERT INTO image_labels (image_id, label, score, rank, tenant, created_at)
		 SELECT 'img_' || ` + hex + `, ` + label + `, 0.5, 0, ` + tenant + `, ` + ts(created) + ` FROM ` + seq + ` WHERE g.i % 50 <> 7`,
		`INSERT INTO analytics_images (image_id, tenant, status, error, created_at, started_at, finished_at, processing_ms,
			latency_ms, ms_bin, top_label, top_score, product, taken_at, place, loaded_at)
		 SELECT 'img_' || ` + hex + `, ` + tenant + `, ` + status + `, CASE WHEN g.i % 50 = 7 THEN 'decode: corrupt' ELSE '' END,
			` + ts(created) + `, ` + ts(created+" + 1000000") + `, ` + ts(finished) + `, ` + ms + `, ` + ms + ` + 1000, b.bin,
			CASE WHEN g.i % 50 = 7 THEN NULL ELSE ` + label + ` END, 0.5, 'shop.example/p/' || ` + pad + `,
			` + ts(created+" - 86400000000") + `, 'city-' || (g.i % 40), ` + ts(finished) + `
		 FROM ` + seq + ` JOIN scale_bins b ON b.ms = ` + ms,
		`ANALYZE`,
	}
	start := time.Now()
	for _, s := range stmts {
		if _, err := db.w.ExecContext(ctx, s); err != nil {
			t.Fatalf("generate: %v\n%s", err, s)
		}
	}
	t.Logf("%s: generated %d images (images, image_labels, analytics_images) in %s", db.d.name, n, time.Since(start).Round(time.Millisecond))
}

func runScale(t *testing.T, db *DB, n int) {
	ctx := context.Background()
	generate(t, db, n)
	base, step := scaleBase.UnixMicro(), (30*24*time.Hour).Microseconds()/int64(n)
	month := StatsQuery{Tenant: "bench", From: scaleBase, To: scaleBase.AddDate(0, 1, 0), Bucket: Day}
	timeIt := func(name string, runs int, f func() (int, error)) {
		t.Helper()
		var ds []time.Duration
		rows := 0
		for range runs {
			start := time.Now()
			k, err := f()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			ds = append(ds, time.Since(start))
			rows = k
		}
		slices.Sort(ds)
		p := func(q float64) time.Duration { return ds[min(len(ds)-1, int(q*float64(len(ds))))] }
		t.Logf("%s %-44s rows %6d  p50 %8s  p99 %8s  max %8s (%d runs)", db.d.name, name, rows,
			p(0.5).Round(10*time.Microsecond), p(0.99).Round(10*time.Microsecond), ds[len(ds)-1].Round(10*time.Microsecond), runs)
	}
	timeIt("labels: month by day and label (top 1000)", 5, func() (int, error) {
		c, err := db.CountBy(ctx, month, ByLabel, 1000)
		return len(c), err
	})
	timeIt("products: month by day (taken)", 5, func() (int, error) {
		q := month
		q.Axis = ByTaken
		c, err := db.CountBy(ctx, q, ByProduct, 1000)
		return len(c), err
	})
	timeIt("places: month by day", 5, func() (int, error) {
		c, err := db.CountBy(ctx, month, ByPlace, 1000)
		return len(c), err
	})
	timeIt("throughput: month by day, p50/p99", 5, func() (int, error) {
		c, err := db.Throughput(ctx, month)
		var done int64
		for _, b := range c {
			done += b.Done + b.Failed
		}
		want := int64(0)
		for i := range int64(n) {
			fin := base + i*step + 1000000 + (50+i%400)*1000
			if (i/7)%10 != 0 && fin < scaleBase.AddDate(0, 1, 0).UnixMicro() {
				want++
			}
		}
		if done != want {
			return 0, fmt.Errorf("throughput counted %d images; want %d", done, want)
		}
		return len(c), err
	})
	timeIt("throughput: one day by minute", 5, func() (int, error) {
		q := month
		q.To, q.Bucket = q.From.Add(24*time.Hour), Minute
		c, err := db.Throughput(ctx, q)
		return len(c), err
	})
	timeIt("failures: month", 5, func() (int, error) {
		c, err := db.FailureReasons(ctx, month, 50)
		return len(c), err
	})
	i := 0
	list := func(opt ListOptions) func() (int, error) {
		return func() (int, error) {
			i++
			p, err := db.ListImages(ctx, opt)
			return len(p.Images), err
		}
	}
	timeIt("list: status=done, limit 50", 200, list(ListOptions{Tenant: "bench", Status: job.StatusDone}))
	timeIt("list: label (1 in 1000), limit 50", 200, func() (int, error) {
		i++
		p, err := db.ListImages(ctx, ListOptions{Tenant: "bench", Label: fmt.Sprintf("label-%d", i%1000), Status: job.StatusDone})
		return len(p.Images), err
	})
	timeIt("list: qr prefix (1 in 50) + status, limit 50", 200, func() (int, error) {
		i++
		p, err := db.ListImages(ctx, ListOptions{Tenant: "bench", Status: job.StatusDone, QRURL: fmt.Sprintf("https://shop.example/p/%04d", i%50)})
		return len(p.Images), err
	})
	timeIt("list: label, page 2 by cursor", 200, func() (int, error) {
		i++
		opt := ListOptions{Tenant: "bench", Label: fmt.Sprintf("label-%d", i%1000)}
		p, err := db.ListImages(ctx, opt)
		if err != nil || p.Next == "" {
			return 0, err
		}
		opt.Cursor = p.Next
		p, err = db.ListImages(ctx, opt)
		return len(p.Images), err
	})
}
