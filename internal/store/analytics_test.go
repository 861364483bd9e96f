package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/glimpse-oss/glimpse/internal/job"
)

func TestAnalyticsSQLite(t *testing.T) { runAnalyticsSuite(t, openTestSQLite) }

func TestAnalyticsPostgres(t *testing.T) {
	runAnalyticsSuite(t, func(t *testing.T) *DB {
		db, err := Open(context.Background(), testPostgresDSN()+"&search_path="+testSchema(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	})
}

// testFact is a done image finished at fin after ms of processing.
func testFact(tenant string, n int, fin time.Time, ms int64, label, product, place string, taken *time.Time) Fact {
	started := fin.Add(-time.Duration(ms) * time.Millisecond)
	f := Fact{
		ImageID: fmt.Sprintf("img_%024x", n), Tenant: tenant, Status: job.StatusDone,
		CreatedAt: started.Add(-time.Second), StartedAt: &started, FinishedAt: fin, ProcessingMS: &ms,
		TopLabel: label, Product: product, Place: place, TakenAt: taken,
	}
	return f
}

func runAnalyticsSuite(t *testing.T, open func(t *testing.T) *DB) {
	ctx := context.Background()
	db := open(t)
	day := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	taken := day.Add(-48 * time.Hour).Add(3 * time.Hour)
	var facts []Fact
	// Day 1: 10 tabby (processing 100 ms), 5 mug; day 2: 3 tabby, 2 failed.
	for i := range 10 {
		facts = append(facts, testFact("acme", i, day.Add(time.Duration(i)*time.Minute), 100, "tabby", "shop.example/p/1", "Paris", &taken))
	}
	for i := 10; i < 15; i++ {
		facts = append(facts, testFact("acme", i, day.Add(2*time.Hour), 1000, "mug", "shop.example/p/2", "Tokyo", nil))
	}
	for i := 15; i < 18; i++ {
		facts = append(facts, testFact("acme", i, day.Add(26*time.Hour), 100, "tabby", "", "", nil))
	}
	for i := 18; i < 20; i++ {
		f := testFact("acme", i, day.Add(27*time.Hour), 5, "", "", "", nil)
		f.Status, f.Error, f.ProcessingMS = job.StatusFailed, "decode: corrupt", nil
		facts = append(facts, f)
	}
	facts = append(facts, testFact("other", 99, day, 100, "tabby", "", "", nil))
	if err := db.UpsertFacts(ctx, facts); err != nil {
		t.Fatal(err)
	}
	// Redelivery: the same rows again, then an older version of one.
	if err := db.UpsertFacts(ctx, facts); err != nil {
		t.Fatal(err)
	}
	old := facts[0]
	old.FinishedAt = old.FinishedAt.Add(-time.Hour)
	old.TopLabel = "stale"
	if err := db.UpsertFacts(ctx, []Fact{old}); err != nil {
		t.Fatal(err)
	}
	if f, err := db.GetFact(ctx, facts[0].ImageID); err != nil || f.TopLabel != "tabby" || !f.FinishedAt.Equal(facts[0].FinishedAt) {
		t.Errorf("GetFact after an older upsert = %+v, %v; want the newer row kept", f, err)
	}
	if _, err := db.GetFact(ctx, "img_nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetFact(unknown) error = %v; want ErrNotFound", err)
	}

	q := StatsQuery{Tenant: "acme", From: day, To: day.Add(72 * time.Hour), Bucket: Day}
	tp, err := db.Throughput(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if len(tp) != 2 || !tp[0].T.Equal(day) || tp[0].Done != 15 || tp[0].Failed != 0 || tp[1].Done != 3 || tp[1].Failed != 2 {
		t.Fatalf("Throughput = %+v; want day 1 15 done, day 2 3 done 2 failed", tp)
	}
	if p := tp[1].P50MS; p < 98 || p > 102 {
		t.Errorf("day 2 p50 = %v ms; want 100 ±2%%", p)
	}
	if p := tp[0].P99MS; p < 980 || p > 1020 {
		t.Errorf("day 1 p99 = %v ms; want 1000 ±2%%", p)
	}

	labels, err := db.CountBy(ctx, q, ByLabel, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []Count{{day, "tabby", 10}, {day, "mug", 5}, {day.Add(24 * time.Hour), "tabby", 3}}
	if fmt.Sprint(labels) != fmt.Sprint(want) {
		t.Errorf("CountBy(label) = %v; want %v", labels, want)
	}
	if top, _ := db.CountBy(ctx, q, ByLabel, 1); len(top) != 2 || top[0].Value != "tabby" || top[1].Value != "tabby" {
		t.Errorf("CountBy(label, top 1) = %v; want only tabby", top)
	}
	hq := q
	hq.Bucket = Hour
	if prods, _ := db.CountBy(ctx, hq, ByProduct, 0); len(prods) != 2 || prods[0].Count != 10 || !prods[1].T.Equal(day.Add(2*time.Hour)) {
		t.Errorf("CountBy(product, hour) = %v", prods)
	}
	tq := StatsQuery{Tenant: "acme", From: taken.Add(-time.Hour * 5), To: taken.Add(time.Hour), Bucket: Day, Axis: ByTaken}
	if places, _ := db.CountBy(ctx, tq, ByPlace, 0); len(places) != 1 || places[0].Value != "Paris" || places[0].Count != 10 || !places[0].T.Equal(taken.Truncate(24*time.Hour)) {
		t.Errorf("CountBy(place, taken) = %v; want Paris 10 on the day taken", places)
	}
	if _, err := db.CountBy(ctx, StatsQuery{Tenant: "acme", From: day, To: day, Bucket: Day}, ByLabel, 0); !errors.Is(err, ErrBadQuery) {
		t.Errorf("CountBy(empty range) error = %v; want ErrBadQuery", err)
	}
	reasons, err := db.FailureReasons(ctx, q, 10)
	if err != nil || len(reasons) != 1 || reasons[0] != (ReasonCount{"decode: corrupt", 2}) {
		t.Errorf("FailureReasons = %v, %v", reasons, err)
	}

	for i, n := range []int64{5, 9, 2} {
		if err := db.RecordBacklog(ctx, day.Add(time.Duration(i)*5*time.Second), n, 2); err != nil {
			t.Fatal(err)
		}
	}
	bl, err := db.Backlog(ctx, StatsQuery{From: day, To: day.Add(time.Hour), Bucket: Minute})
	if err != nil || len(bl) != 1 || bl[0].Backlog != 9 || bl[0].Workers != 2 {
		t.Errorf("Backlog = %v, %v; want one minute with backlog 9, 2 workers", bl, err)
	}
	if err := db.PruneBacklog(ctx, day.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}

	var n int
	err = db.EachFact(ctx, FactFilter{Tenant: "acme", Since: day.Add(24 * time.Hour)}, func(f *Fact) error {
		n++
		if f.Tenant != "acme" || f.FinishedAt.Before(day.Add(24*time.Hour)) {
			t.Errorf("EachFact gave %+v", f)
		}
		return nil
	})
	if err != nil || n != 5 {
		t.Errorf("EachFact since day 2 gave %d rows, %v; want 5", n, err)
	}
}
