package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/glimpse-oss/glimpse/internal/job"
)

// openBenchSQLite opens a fresh file store with the given synchronous mode.
func openBenchSQLite(b *testing.B, synchronous string) *DB {
	b.Helper()
	db, err := openSQLite(context.Background(), filepath.Join(b.TempDir(), "bench.db"), sqliteConfig{synchronous: synchronous})
	if err != nil {
		b.Fatalf("openSQLite() error = %v", err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

// BenchmarkCreateImage measures one durable insert on each engine. SQLite:
// FULL is what Open uses, NORMAL shows what the fsync per commit costs.
// PostgreSQL: synchronous_commit=on is the server's default, off the same
// comparison.
func BenchmarkCreateImage(b *testing.B) {
	engines := []struct {
		name string
		open func(b *testing.B) *DB
	}{
		{"sqlite/synchronous=FULL", func(b *testing.B) *DB { return openBenchSQLite(b, "FULL") }},
		{"sqlite/synchronous=NORMAL", func(b *testing.B) *DB { return openBenchSQLite(b, "NORMAL") }},
		{"postgres/synchronous_commit=on", func(b *testing.B) *DB { return openTestPostgres(b) }},
		{"postgres/synchronous_commit=off", func(b *testing.B) *DB { return openTestPostgres(b, "synchronous_commit=off") }},
	}
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) {
			db := e.open(b)
			ctx := context.Background()
			n := 0
			for b.Loop() {
				if _, _, err := db.CreateImage(ctx, testImage("acme", n)); err != nil {
					b.Fatal(err)
				}
				n++
			}
		})
	}
}

// BenchmarkJobCycle measures the store's share of one job on each engine:
// create, mark processing, save a five-label result, read it back. SQLite
// with synchronous=OFF shows the CPU time without the disk, with and without
// the cache of prepared statements (the uncached run is the reference).
func BenchmarkJobCycle(b *testing.B) {
	engines := []struct {
		name string
		open func(b *testing.B) *DB
	}{
		{"sqlite", func(b *testing.B) *DB { return openBenchSQLite(b, "FULL") }},
		{"sqlite/synchronous=OFF", func(b *testing.B) *DB { return openBenchSQLite(b, "OFF") }},
		{"sqlite/synchronous=OFF/uncached", func(b *testing.B) *DB {
			db := openBenchSQLite(b, "OFF")
			db.stmts.off = true
			return db
		}},
		{"postgres", func(b *testing.B) *DB { return openTestPostgres(b) }},
	}
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) {
			db := e.open(b)
			ctx := context.Background()
			res := &job.Result{Width: 640, Height: 480}
			for i := range 5 {
				res.Labels = append(res.Labels, job.Label{Label: fmt.Sprintf("label %d", i), Score: 0.1})
			}
			n := 0
			for b.Loop() {
				img := testImage("acme", n)
				n++
				if _, _, err := db.CreateImage(ctx, img); err != nil {
					b.Fatal(err)
				}
				if _, err := db.MarkProcessing(ctx, img.ID, 1, nil); err != nil {
					b.Fatal(err)
				}
				if _, err := db.SaveResult(ctx, img.ID, 1, nil, res); err != nil {
					b.Fatal(err)
				}
				if _, err := db.GetImageByID(ctx, img.ID); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkListImages lists pages of 50 from 10,000 done images of one
// tenant (plus 2,000 of another), each with five labels out of 100, on each
// engine; label "rare" is on a single old image. Both engines are seeded
// without waiting for the disk: that only speeds up the seeding.
func BenchmarkListImages(b *testing.B) {
	engines := []struct {
		name string
		open func(b *testing.B) *DB
	}{
		{"sqlite", func(b *testing.B) *DB { return openBenchSQLite(b, "OFF") }},
		{"postgres", func(b *testing.B) *DB { return openTestPostgres(b, "synchronous_commit=off") }},
	}
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) { benchListImages(b, e.open(b)) })
	}
}

func benchListImages(b *testing.B, db *DB) {
	const rows = 10_000
	ctx := context.Background()
	clock := newFakeClock()
	db.now = clock.Now
	for n := range rows + 2000 {
		tenant := "acme"
		if n >= rows {
			tenant = "other"
		}
		img := testImage(tenant, n)
		clock.Advance(1000)
		if _, _, err := db.CreateImage(ctx, img); err != nil {
			b.Fatal(err)
		}
		if n%10 == 9 {
			continue // left queued
		}
		res := &job.Result{}
		for i := range 5 {
			res.Labels = append(res.Labels, job.Label{Label: fmt.Sprintf("Label %d", (n+i*7)%100), Score: 0.1})
		}
		if n == 100 {
			res.Labels = append(res.Labels, job.Label{Label: "rare", Score: 0.01})
		}
		if _, err := db.SaveResult(ctx, img.ID, 1, nil, res); err != nil {
			b.Fatal(err)
		}
	}
	if db.d.name == "postgres" {
		// Statistics as autovacuum would gather them, so that the
		// planner sees the tables as they are.
		if _, err := db.w.ExecContext(ctx, `ANALYZE`); err != nil {
			b.Fatal(err)
		}
	}
	deep, err := db.ListImages(ctx, ListOptions{Tenant: "acme", Limit: 1000})
	if err != nil {
		b.Fatal(err)
	}

	tests := []struct {
		name string
		opt  ListOptions
	}{
		{name: "all", opt: ListOptions{Tenant: "acme"}},
		{name: "all/after-1000", opt: ListOptions{Tenant: "acme", Cursor: deep.Next}},
		{name: "status=queued", opt: ListOptions{Tenant: "acme", Status: job.StatusQueued}},
		{name: "label=common", opt: ListOptions{Tenant: "acme", Label: "label 42"}},
		{name: "label=common/after-1000", opt: ListOptions{Tenant: "acme", Label: "label 42", Cursor: deep.Next}},
		{name: "label=rare", opt: ListOptions{Tenant: "acme", Label: "rare"}},
		{name: "label=absent", opt: ListOptions{Tenant: "acme", Label: "absent"}},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			got := 0
			for b.Loop() {
				page, err := db.ListImages(ctx, tt.opt)
				if err != nil {
					b.Fatal(err)
				}
				got = len(page.Images)
			}
			b.ReportMetric(float64(got), "images/op")
		})
	}
}
