package store

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/glimpse-oss/glimpse/internal/job"
)

// fakeClock is a settable clock for DB.now, safe for concurrent use.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

// newFakeClock returns a clock at a fixed, arbitrary instant.
func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

// Now returns the clock's time.
func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock on by d.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testImage returns an image of tenant numbered n, with a valid id.
func testImage(tenant string, n int) *job.Image {
	sum := job.ContentHash([]byte(fmt.Sprintf("%s-%d", tenant, n)))
	return &job.Image{
		ID:          job.NewImageID(tenant, sum, ""),
		Tenant:      tenant,
		Filename:    fmt.Sprintf("img%d.jpg", n),
		ContentType: "image/jpeg",
		Size:        int64(1000 + n),
		SHA256:      sum,
		Features:    []job.Feature{job.FeatureLabels},
	}
}

// mustCreate creates img and fails the test unless it is new.
func mustCreate(t *testing.T, db *DB, img *job.Image) *job.Image {
	t.Helper()
	stored, created, err := db.CreateImage(context.Background(), img)
	if err != nil {
		t.Fatalf("CreateImage(%s): %v", img.ID, err)
	}
	if !created {
		t.Fatalf("CreateImage(%s): created = false, want true", img.ID)
	}
	return stored
}

// mustDone takes image id through attempt 1 to done with labels.
func mustDone(t *testing.T, db *DB, id string, labels ...string) {
	t.Helper()
	ctx := context.Background()
	if ok, err := db.MarkProcessing(ctx, id, 1, nil); err != nil || !ok {
		t.Fatalf("MarkProcessing(%s, 1) = %v, %v; want true, nil", id, ok, err)
	}
	res := &job.Result{Width: 640, Height: 480, Model: "test"}
	for i, l := range labels {
		res.Labels = append(res.Labels, job.Label{Label: l, Score: 0.9 - float64(i)/10})
	}
	if ok, err := db.SaveResult(ctx, id, 1, nil, res); err != nil || !ok {
		t.Fatalf("SaveResult(%s, 1) = %v, %v; want true, nil", id, ok, err)
	}
}

// ids returns the ids of images, in order.
func ids(images []*job.Image) []string {
	out := make([]string, len(images))
	for i, img := range images {
		out[i] = img.ID
	}
	return out
}

// runStoreSuite runs the behaviour every store engine must have. open
// returns a fresh, empty, migrated store that the suite may close; the suite
// replaces its clock.
func runStoreSuite(t *testing.T, open func(t *testing.T) *DB) {
	t.Run("CreateImage", func(t *testing.T) { testCreateImage(t, open(t)) })
	t.Run("GetImage", func(t *testing.T) { testGetImage(t, open(t)) })
	t.Run("ListImages", func(t *testing.T) { testListImages(t, open(t)) })
	t.Run("ListImagesBadCursor", func(t *testing.T) { testListImagesBadCursor(t, open(t)) })
	t.Run("DuplicateLabels", func(t *testing.T) { testDuplicateLabels(t, open(t)) })
	t.Run("SynonymBackfill", func(t *testing.T) { testSynonymBackfill(t, open(t)) })
	t.Run("DeleteImage", func(t *testing.T) { testDeleteImage(t, open(t)) })
	t.Run("Transitions", func(t *testing.T) { testTransitions(t, open(t)) })
	t.Run("Reopen", func(t *testing.T) { testReopen(t, open(t)) })
	t.Run("RequeueStaleTouch", func(t *testing.T) { testRequeueStaleTouch(t, open(t)) })
	t.Run("Keys", func(t *testing.T) { testKeys(t, open(t)) })
	t.Run("CountByStatus", func(t *testing.T) { testCountByStatus(t, open(t)) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, open(t)) })
	t.Run("RacingAttempts", func(t *testing.T) { testRacingAttempts(t, open(t)) })
	t.Run("FeatureFilters", func(t *testing.T) { testFeatureFilters(t, open(t)) })
	t.Run("SimilarImages", func(t *testing.T) { testSimilarImages(t, open(t)) })
}

func testCreateImage(t *testing.T, db *DB) {
	ctx := context.Background()
	clock := newFakeClock()
	db.now = clock.Now

	first := testImage("acme", 1)
	retry := testImage("acme", 1)
	retry.Filename = "renamed.jpg"
	explicit := testImage("acme", 2)
	explicit.CreatedAt = time.Date(2025, 1, 2, 3, 4, 5, 6789, time.FixedZone("x", 3600))
	foreign := testImage("other", 1)
	foreign.ID = first.ID

	tests := []struct {
		name         string
		img          *job.Image
		wantCreated  bool
		wantFilename string
		wantCreateAt time.Time
		wantErr      bool
	}{
		{name: "new", img: first, wantCreated: true, wantFilename: "img1.jpg", wantCreateAt: clock.Now()},
		{name: "retry keeps the first", img: retry, wantCreated: false, wantFilename: "img1.jpg", wantCreateAt: clock.Now()},
		{name: "explicit created_at in UTC to the microsecond", img: explicit, wantCreated: true, wantFilename: "img2.jpg",
			wantCreateAt: time.Date(2025, 1, 2, 2, 4, 5, 6000, time.UTC)},
		{name: "id of another tenant", img: foreign, wantErr: true},
		{name: "empty id", img: &job.Image{Tenant: "acme"}, wantErr: true},
		{name: "empty tenant", img: &job.Image{ID: "img_x"}, wantErr: true},
		{name: "nil", img: nil, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, created, err := db.CreateImage(ctx, tt.img)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("CreateImage() error = nil, want an error")
				}
				return
			}
			if err != nil {
				t.Fatalf("CreateImage() error = %v", err)
			}
			if created != tt.wantCreated {
				t.Errorf("created = %v, want %v", created, tt.wantCreated)
			}
			if got.Filename != tt.wantFilename {
				t.Errorf("Filename = %q, want %q", got.Filename, tt.wantFilename)
			}
			if !got.CreatedAt.Equal(tt.wantCreateAt) || got.CreatedAt.Location() != time.UTC {
				t.Errorf("CreatedAt = %v, want %v in UTC", got.CreatedAt, tt.wantCreateAt)
			}
			if got.Status != job.StatusQueued || got.Attempts != 0 || got.Result != nil {
				t.Errorf("Status, Attempts, Result = %s, %d, %v; want queued, 0, nil", got.Status, got.Attempts, got.Result)
			}
			if !reflect.DeepEqual(got.Features, []job.Feature{job.FeatureLabels}) {
				t.Errorf("Features = %v, want [labels]", got.Features)
			}
		})
	}
}

func testGetImage(t *testing.T, db *DB) {
	ctx := context.Background()
	img := mustCreate(t, db, testImage("acme", 1))
	mustDone(t, db, img.ID, "Tabby", "tiger cat")

	tests := []struct {
		name    string
		tenant  string
		id      string
		wantErr error
	}{
		{name: "own", tenant: "acme", id: img.ID},
		{name: "another tenant", tenant: "other", id: img.ID, wantErr: ErrNotFound},
		{name: "missing", tenant: "acme", id: "img_000000000000000000000000", wantErr: ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := db.GetImage(ctx, tt.tenant, tt.id)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("GetImage() error = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr != nil {
				return
			}
			if got.Status != job.StatusDone || got.Width != 640 || got.Height != 480 {
				t.Errorf("Status, Width, Height = %s, %d, %d; want done, 640, 480", got.Status, got.Width, got.Height)
			}
			want := &job.Result{Width: 640, Height: 480, Model: "test", Labels: []job.Label{
				{Label: "Tabby", Score: 0.9}, {Label: "tiger cat", Score: 0.8},
			}}
			if !reflect.DeepEqual(got.Result, want) {
				t.Errorf("Result = %+v, want %+v", got.Result, want)
			}
			if got.StartedAt == nil || got.FinishedAt == nil {
				t.Errorf("StartedAt, FinishedAt = %v, %v; want both set", got.StartedAt, got.FinishedAt)
			}
		})
	}

	t.Run("by id", func(t *testing.T) {
		got, err := db.GetImageByID(ctx, img.ID)
		if err != nil {
			t.Fatalf("GetImageByID() error = %v", err)
		}
		if got.Tenant != "acme" {
			t.Errorf("Tenant = %q, want acme", got.Tenant)
		}
		if _, err := db.GetImageByID(ctx, "img_000000000000000000000000"); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetImageByID(missing) error = %v, want ErrNotFound", err)
		}
	})
}

func testListImages(t *testing.T, db *DB) {
	ctx := context.Background()
	clock := newFakeClock()
	db.now = clock.Now

	// Eleven images, newest last; images 4 and 5 share created_at, so
	// the id decides their order. Even ones are done, every third is a cat.
	var want []string // newest first
	var wantDone, wantCats []string
	for n := range 11 {
		if n != 5 {
			clock.Advance(time.Second)
		}
		img := mustCreate(t, db, testImage("acme", n))
		if n%2 == 0 {
			labels := []string{"Golden retriever"}
			if n%3 == 0 {
				labels = append(labels, "Tabby")
			}
			mustDone(t, db, img.ID, labels...)
		}
		want = append([]string{img.ID}, want...)
	}
	if want[5] < want[6] { // 5 and 4: equal created_at, so id desc
		want[5], want[6] = want[6], want[5]
	}
	for _, id := range want {
		img, err := db.GetImageByID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if img.Status == job.StatusDone {
			wantDone = append(wantDone, id)
			if img.Result != nil && len(img.Result.Labels) == 2 {
				wantCats = append(wantCats, id)
			}
		}
	}
	mustCreate(t, db, testImage("other", 1)) // never listed for acme

	tests := []struct {
		name      string
		opt       ListOptions
		want      []string
		wantPages int
	}{
		{name: "all, pages of 3", opt: ListOptions{Tenant: "acme", Limit: 3}, want: want, wantPages: 4},
		{name: "all, one page", opt: ListOptions{Tenant: "acme"}, want: want, wantPages: 1},
		{name: "exact pages", opt: ListOptions{Tenant: "acme", Limit: 11}, want: want, wantPages: 1},
		{name: "status done", opt: ListOptions{Tenant: "acme", Status: job.StatusDone, Limit: 2}, want: wantDone, wantPages: 3},
		{name: "label, other case", opt: ListOptions{Tenant: "acme", Label: "TABBY", Limit: 1}, want: wantCats, wantPages: 2},
		{name: "label and status", opt: ListOptions{Tenant: "acme", Label: "tabby", Status: job.StatusDone}, want: wantCats, wantPages: 1},
		{name: "label prefix is no match", opt: ListOptions{Tenant: "acme", Label: "tab"}, want: nil, wantPages: 1},
		{name: "status failed, none", opt: ListOptions{Tenant: "acme", Status: job.StatusFailed}, want: nil, wantPages: 1},
		{name: "other tenant", opt: ListOptions{Tenant: "other", Limit: 1}, want: []string{testImage("other", 1).ID}, wantPages: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			pages := 0
			opt := tt.opt
			for {
				page, err := db.ListImages(ctx, opt)
				if err != nil {
					t.Fatalf("ListImages(page %d) error = %v", pages+1, err)
				}
				pages++
				got = append(got, ids(page.Images)...)
				if page.Next == "" {
					break
				}
				if pages > 20 {
					t.Fatal("ListImages never ends")
				}
				opt.Cursor = page.Next
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ids = %v, want %v", got, tt.want)
			}
			if pages != tt.wantPages {
				t.Errorf("pages = %d, want %d", pages, tt.wantPages)
			}
		})
	}

	invalid := []struct {
		name string
		opt  ListOptions
	}{
		{name: "no tenant", opt: ListOptions{}},
		{name: "unknown status", opt: ListOptions{Tenant: "acme", Status: "lost"}},
		{name: "negative limit", opt: ListOptions{Tenant: "acme", Limit: -1}},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := db.ListImages(ctx, tt.opt); err == nil {
				t.Error("ListImages() error = nil, want an error")
			}
		})
	}
}

func testListImagesBadCursor(t *testing.T, db *DB) {
	ctx := context.Background()
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		name   string
		cursor string
	}{
		{name: "not base64", cursor: "!!!"},
		{name: "no separator", cursor: b64("12345")},
		{name: "no id", cursor: b64("12345.")},
		{name: "time not a number", cursor: b64("abc.img_x")},
		{name: "padded base64", cursor: base64.URLEncoding.EncodeToString([]byte("12345.img_x"))},
		{name: "overflow", cursor: b64("999999999999999999999.img_x")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := db.ListImages(ctx, ListOptions{Tenant: "acme", Cursor: tt.cursor})
			if !errors.Is(err, ErrBadCursor) {
				t.Errorf("ListImages() error = %v, want ErrBadCursor", err)
			}
		})
	}
}

// testDuplicateLabels checks that a result naming a label twice (in any
// case) lists its image once, and that the result keeps both entries.
func testDuplicateLabels(t *testing.T, db *DB) {
	ctx := context.Background()
	img := mustCreate(t, db, testImage("acme", 1))
	mustDone(t, db, img.ID, "Tabby", "tabby", "lynx")
	// ImageNet's labels list synonyms; each is a name the image is found
	// by, and one shared by two labels still lists the image once.
	cat := mustCreate(t, db, testImage("acme", 2))
	mustDone(t, db, cat.ID, "tabby, tabby cat", "Egyptian cat", "tiger cat", "malamute, malemute, Alaskan malamute", "cat, tabby cat")
	tests := []struct {
		label string
		want  []string
	}{
		{label: "tabby", want: []string{cat.ID, img.ID}},
		{label: "LYNX", want: []string{img.ID}},
		{label: "tabby cat", want: []string{cat.ID}},
		{label: "tabby, tabby cat", want: []string{cat.ID}},
		{label: "Alaskan malamute", want: []string{cat.ID}},
		{label: "malemute", want: []string{cat.ID}},
		{label: "cat", want: []string{cat.ID}},
		{label: "alaskan", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.label, func(t *testing.T) {
			page, err := db.ListImages(ctx, ListOptions{Tenant: "acme", Label: tt.label})
			if err != nil {
				t.Fatalf("ListImages() error = %v", err)
			}
			if got := ids(page.Images); !slices.Equal(got, tt.want) {
				t.Errorf("ListImages() = %v, want %v", got, tt.want)
			}
			for _, im := range page.Images {
				if want := map[string]int{img.ID: 3, cat.ID: 5}[im.ID]; len(im.Result.Labels) != want {
					t.Errorf("result labels of %s = %d, want %d", im.ID, len(im.Result.Labels), want)
				}
			}
		})
	}
}

// testSynonymBackfill checks migration 5: an image analysed before synonym
// rows existed gets them, once, however often the migration runs.
func testSynonymBackfill(t *testing.T, db *DB) {
	ctx := context.Background()
	img := mustCreate(t, db, testImage("acme", 1))
	mustDone(t, db, img.ID, "tabby, tabby cat", "Egyptian cat", "tiger cat, tabby")
	// As the image would be from before: its labels' rows only.
	if _, err := db.w.ExecContext(ctx, db.d.q(`DELETE FROM image_labels WHERE image_id = ? AND rank >= 3`), img.ID); err != nil {
		t.Fatal(err)
	}
	found := func(label string) bool {
		t.Helper()
		page, err := db.ListImages(ctx, ListOptions{Tenant: "acme", Label: label})
		if err != nil {
			t.Fatal(err)
		}
		return len(page.Images) == 1
	}
	if found("tabby") {
		t.Fatal("label=tabby found the image before the backfill; the test set-up is wrong")
	}
	sub, err := fs.Sub(migrationsFS, db.d.migrations)
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(db.d.goose, db.w, sub, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := p.DownTo(ctx, 4); err != nil {
			t.Fatalf("migrate down to 4: %v", err)
		}
		if _, err := p.UpTo(ctx, 5); err != nil {
			t.Fatalf("migrate up to 5: %v", err)
		}
	}
	for _, label := range []string{"tabby", "tabby cat", "tiger cat", "Egyptian cat", "tabby, tabby cat"} {
		if !found(label) {
			t.Errorf("label=%s does not find the image after the backfill", label)
		}
	}
	var rows int
	if err := db.r.QueryRowContext(ctx, db.d.q(`SELECT COUNT(*) FROM image_labels WHERE image_id = ?`), img.ID).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 6 { // three labels, and tabby, tabby cat, tiger cat
		t.Errorf("label rows = %d; want 6", rows)
	}
}

func testDeleteImage(t *testing.T, db *DB) {
	ctx := context.Background()
	img := mustCreate(t, db, testImage("acme", 1))
	mustDone(t, db, img.ID, "tabby")

	tests := []struct {
		name    string
		tenant  string
		wantErr error
	}{
		{name: "another tenant", tenant: "other", wantErr: ErrNotFound},
		{name: "own", tenant: "acme"},
		{name: "again", tenant: "acme", wantErr: ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := db.DeleteImage(ctx, tt.tenant, img.ID); !errors.Is(err, tt.wantErr) {
				t.Errorf("DeleteImage() error = %v, want %v", err, tt.wantErr)
			}
		})
	}
	var labels int
	if err := db.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM image_labels`).Scan(&labels); err != nil {
		t.Fatal(err)
	}
	if labels != 0 {
		t.Errorf("label rows after delete = %d, want 0", labels)
	}
	// The id is free again: a new upload of the same bytes creates it anew.
	mustCreate(t, db, testImage("acme", 1))
}

// testReopen asks images for more features: only a finished image whose
// features are still those its caller read goes back to queued, keeping
// its result until the new one commits, and the new job's attempts win.
func testReopen(t *testing.T, db *DB) {
	ctx := context.Background()
	labels := []job.Feature{job.FeatureLabels}
	wider := []job.Feature{job.FeatureFaces, job.FeatureLabels}

	done := mustCreate(t, db, testImage("acme", 1))
	mustDone(t, db, done.ID, "tabby")
	got, ok, err := db.Reopen(ctx, "acme", done.ID, labels, wider)
	if err != nil || !ok {
		t.Fatalf("Reopen(done) = %v, %v; want reopened", ok, err)
	}
	if got.Status != job.StatusQueued || !slices.Equal(got.Features, wider) || got.Attempts != 1 ||
		got.Result == nil || got.StartedAt != nil || got.FinishedAt != nil {
		t.Errorf("reopened image = status %s, features %v, attempts %d, result %v, started %v, finished %v; "+
			"want queued, %v, 1, the old result, no times", got.Status, got.Features, got.Attempts, got.Result,
			got.StartedAt, got.FinishedAt, wider)
	}
	// A second caller that read the old features loses the race.
	if _, ok, err := db.Reopen(ctx, "acme", done.ID, labels, wider); err != nil || ok {
		t.Errorf("Reopen(stale features) = %v, %v; want refused", ok, err)
	}
	// A job of the old list still in the queue numbers its next attempt as
	// the new job does, but names the old features: every transition of
	// its is refused, so it cannot finish the image without the new ones,
	// nor fail it from the dead-letter queue.
	if ok, err := db.MarkProcessing(ctx, done.ID, got.Attempts+1, labels); err != nil || ok {
		t.Errorf("MarkProcessing(old features) = %v, %v; want refused", ok, err)
	}
	if ok, err := db.SaveResult(ctx, done.ID, got.Attempts+1, labels, &job.Result{}); err != nil || ok {
		t.Errorf("SaveResult(old features) = %v, %v; want refused", ok, err)
	}
	for _, attempt := range []int{got.Attempts + 1, 0} {
		if ok, err := db.MarkFailed(ctx, done.ID, attempt, labels, "old job"); err != nil || ok {
			t.Errorf("MarkFailed(attempt %d, old features) = %v, %v; want refused", attempt, ok, err)
		}
	}
	// The new job's first delivery, numbered from the image's attempts,
	// takes the image to done with the wider result.
	if ok, err := db.MarkProcessing(ctx, done.ID, got.Attempts+1, wider); err != nil || !ok {
		t.Fatalf("MarkProcessing(attempt %d) = %v, %v", got.Attempts+1, ok, err)
	}
	res := &job.Result{Labels: []job.Label{{Label: "tabby", Score: 0.9}}, Faces: []job.Face{}}
	if ok, err := db.SaveResult(ctx, done.ID, got.Attempts+1, wider, res); err != nil || !ok {
		t.Fatalf("SaveResult(attempt %d) = %v, %v", got.Attempts+1, ok, err)
	}
	after, err := db.GetImage(ctx, "acme", done.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after.Status != job.StatusDone || after.Result == nil || after.Result.Faces == nil || after.FinishedAt == nil {
		t.Errorf("after the wider job: status %s, result %+v, finished %v; want done with faces", after.Status, after.Result, after.FinishedAt)
	}

	failed := mustCreate(t, db, testImage("acme", 2))
	if ok, err := db.MarkFailed(ctx, failed.ID, 0, nil, "boom"); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if got, ok, err := db.Reopen(ctx, "acme", failed.ID, labels, wider); err != nil || !ok || got.Error != "" {
		t.Errorf("Reopen(failed) = %v, %v, error %q; want reopened with no error", ok, err, got.Error)
	}

	queued := mustCreate(t, db, testImage("acme", 3))
	if got, ok, err := db.Reopen(ctx, "acme", queued.ID, labels, wider); err != nil || ok ||
		got.Status != job.StatusQueued || !slices.Equal(got.Features, labels) {
		t.Errorf("Reopen(queued) = %v, %v, %+v; want refused, unchanged", ok, err, got)
	}
	if _, _, err := db.Reopen(ctx, "other", done.ID, wider, labels); !errors.Is(err, ErrNotFound) {
		t.Errorf("Reopen(another tenant's image) error = %v, want ErrNotFound", err)
	}
}

func testTransitions(t *testing.T, db *DB) {
	ctx := context.Background()
	clock := newFakeClock()
	db.now = clock.Now
	missing := "img_000000000000000000000000"

	type step struct {
		op       string // processing, result, failed, requeue
		attempt  int
		labels   []string
		wantOK   bool
		wantErr  error
		status   job.Status
		attempts int
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{name: "happy path", steps: []step{
			{op: "processing", attempt: 1, wantOK: true, status: job.StatusProcessing, attempts: 1},
			{op: "result", attempt: 1, labels: []string{"tabby"}, wantOK: true, status: job.StatusDone, attempts: 1},
		}},
		{name: "stale worker loses to a later attempt", steps: []step{
			{op: "processing", attempt: 1, wantOK: true, status: job.StatusProcessing, attempts: 1},
			{op: "processing", attempt: 2, wantOK: true, status: job.StatusProcessing, attempts: 2},
			{op: "processing", attempt: 1, wantOK: false, status: job.StatusProcessing, attempts: 2},
			{op: "result", attempt: 1, labels: []string{"stale"}, wantOK: false, status: job.StatusProcessing, attempts: 2},
			{op: "failed", attempt: 1, wantOK: false, status: job.StatusProcessing, attempts: 2},
			{op: "result", attempt: 2, labels: []string{"tabby"}, wantOK: true, status: job.StatusDone, attempts: 2},
		}},
		{name: "redelivery after done is refused", steps: []step{
			{op: "processing", attempt: 1, wantOK: true, status: job.StatusProcessing, attempts: 1},
			{op: "result", attempt: 1, labels: []string{"tabby"}, wantOK: true, status: job.StatusDone, attempts: 1},
			{op: "processing", attempt: 2, wantOK: false, status: job.StatusDone, attempts: 1},
			{op: "result", attempt: 2, labels: []string{"other"}, wantOK: false, status: job.StatusDone, attempts: 1},
			{op: "result", attempt: 1, labels: []string{"other"}, wantOK: false, status: job.StatusDone, attempts: 1},
		}},
		{name: "done cannot fail, not even from the DLQ", steps: []step{
			{op: "processing", attempt: 1, wantOK: true, status: job.StatusProcessing, attempts: 1},
			{op: "result", attempt: 1, labels: []string{"tabby"}, wantOK: true, status: job.StatusDone, attempts: 1},
			{op: "failed", attempt: 1, wantOK: false, status: job.StatusDone, attempts: 1},
			{op: "failed", attempt: 5, wantOK: false, status: job.StatusDone, attempts: 1},
			{op: "failed", attempt: 0, wantOK: false, status: job.StatusDone, attempts: 1},
		}},
		{name: "DLQ fails whatever attempt ran", steps: []step{
			{op: "processing", attempt: 3, wantOK: true, status: job.StatusProcessing, attempts: 3},
			{op: "failed", attempt: 0, wantOK: true, status: job.StatusFailed, attempts: 3},
			{op: "result", attempt: 4, labels: []string{"late"}, wantOK: false, status: job.StatusFailed, attempts: 3},
			{op: "processing", attempt: 4, wantOK: false, status: job.StatusFailed, attempts: 3},
		}},
		{name: "worker failure", steps: []step{
			{op: "processing", attempt: 1, wantOK: true, status: job.StatusProcessing, attempts: 1},
			{op: "failed", attempt: 1, wantOK: true, status: job.StatusFailed, attempts: 1},
			{op: "failed", attempt: 0, wantOK: false, status: job.StatusFailed, attempts: 1},
		}},
		{name: "same attempt twice is idempotent", steps: []step{
			{op: "processing", attempt: 1, wantOK: true, status: job.StatusProcessing, attempts: 1},
			{op: "processing", attempt: 1, wantOK: true, status: job.StatusProcessing, attempts: 1},
			{op: "result", attempt: 1, labels: []string{"tabby"}, wantOK: true, status: job.StatusDone, attempts: 1},
		}},
		{name: "requeued then redelivered", steps: []step{
			{op: "processing", attempt: 1, wantOK: true, status: job.StatusProcessing, attempts: 1},
			{op: "requeue", status: job.StatusQueued, attempts: 1},
			{op: "processing", attempt: 2, wantOK: true, status: job.StatusProcessing, attempts: 2},
			{op: "result", attempt: 2, labels: []string{"tabby", "tiger cat"}, wantOK: true, status: job.StatusDone, attempts: 2},
			{op: "requeue", status: job.StatusDone, attempts: 2},
		}},
		{name: "result without MarkProcessing", steps: []step{
			{op: "result", attempt: 1, labels: []string{"tabby"}, wantOK: true, status: job.StatusDone, attempts: 1},
		}},
		{name: "bad attempts", steps: []step{
			{op: "processing", attempt: 0, wantErr: errAny, status: job.StatusQueued},
			{op: "result", attempt: 0, wantErr: errAny, status: job.StatusQueued},
			{op: "failed", attempt: -1, wantErr: errAny, status: job.StatusQueued},
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := mustCreate(t, db, testImage("acme", i))
			var lastLabels []string
			for j, s := range tt.steps {
				clock.Advance(time.Second)
				var ok bool
				var err error
				switch s.op {
				case "processing":
					ok, err = db.MarkProcessing(ctx, img.ID, s.attempt, nil)
				case "result":
					res := &job.Result{Width: 10 * s.attempt, Height: 5}
					for _, l := range s.labels {
						res.Labels = append(res.Labels, job.Label{Label: l, Score: 0.5})
					}
					ok, err = db.SaveResult(ctx, img.ID, s.attempt, nil, res)
					if ok {
						lastLabels = s.labels
					}
				case "failed":
					ok, err = db.MarkFailed(ctx, img.ID, s.attempt, nil, fmt.Sprintf("boom %d", s.attempt))
				case "requeue":
					err = db.Requeue(ctx, img.ID)
				}
				if s.wantErr == errAny {
					if err == nil {
						t.Fatalf("step %d %s(%d): error = nil, want an error", j, s.op, s.attempt)
					}
				} else if err != nil {
					t.Fatalf("step %d %s(%d): error = %v", j, s.op, s.attempt, err)
				}
				if ok != s.wantOK {
					t.Errorf("step %d %s(%d): ok = %v, want %v", j, s.op, s.attempt, ok, s.wantOK)
				}
				got, err := db.GetImageByID(ctx, img.ID)
				if err != nil {
					t.Fatal(err)
				}
				if got.Status != s.status || got.Attempts != s.attempts {
					t.Errorf("step %d %s(%d): status, attempts = %s, %d; want %s, %d",
						j, s.op, s.attempt, got.Status, got.Attempts, s.status, s.attempts)
				}
				if got.Status == job.StatusFailed && got.Error == "" {
					t.Errorf("step %d: failed without a reason", j)
				}
			}
			// Label rows are exactly the accepted result's: none left from
			// stale or repeated saves.
			var gotLabels []string
			rows, err := db.r.QueryContext(ctx, db.d.q(`SELECT label FROM image_labels WHERE image_id = ? ORDER BY rank`), img.ID)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			for rows.Next() {
				var l string
				if err := rows.Scan(&l); err != nil {
					t.Fatal(err)
				}
				gotLabels = append(gotLabels, l)
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(gotLabels, lastLabels) {
				t.Errorf("label rows = %v, want %v", gotLabels, lastLabels)
			}
		})
	}

	t.Run("missing image", func(t *testing.T) {
		if _, err := db.MarkProcessing(ctx, missing, 1, nil); !errors.Is(err, ErrNotFound) {
			t.Errorf("MarkProcessing() error = %v, want ErrNotFound", err)
		}
		if _, err := db.SaveResult(ctx, missing, 1, nil, &job.Result{}); !errors.Is(err, ErrNotFound) {
			t.Errorf("SaveResult() error = %v, want ErrNotFound", err)
		}
		if _, err := db.MarkFailed(ctx, missing, 0, nil, "x"); !errors.Is(err, ErrNotFound) {
			t.Errorf("MarkFailed() error = %v, want ErrNotFound", err)
		}
		if err := db.Requeue(ctx, missing); !errors.Is(err, ErrNotFound) {
			t.Errorf("Requeue() error = %v, want ErrNotFound", err)
		}
		if err := db.Touch(ctx, missing); !errors.Is(err, ErrNotFound) {
			t.Errorf("Touch() error = %v, want ErrNotFound", err)
		}
	})
}

// errAny in a test table means "some error".
var errAny = errors.New("any error")

func testRequeueStaleTouch(t *testing.T, db *DB) {
	ctx := context.Background()
	clock := newFakeClock()
	db.now = clock.Now

	// t0: a queued; t1: b processing; t2: c done; t3: d queued.
	var imgs []*job.Image
	for n := range 4 {
		imgs = append(imgs, mustCreate(t, db, testImage("acme", n)))
		clock.Advance(time.Minute)
	}
	a, b, c, d := imgs[0].ID, imgs[1].ID, imgs[2].ID, imgs[3].ID
	start := imgs[0].CreatedAt
	if ok, err := db.MarkProcessing(ctx, b, 1, nil); err != nil || !ok {
		t.Fatalf("MarkProcessing = %v, %v", ok, err)
	}
	mustDone(t, db, c)         // b and c were updated at t4
	clock.Advance(time.Minute) // t5

	tests := []struct {
		name   string
		before time.Time
		limit  int
		want   []string
	}{
		{name: "none before the first", before: start, want: nil},
		{name: "oldest first", before: start.Add(150 * time.Second), want: []string{a}},
		{name: "queued and processing, not done", before: clock.Now(), want: []string{a, d, b}},
		{name: "limit", before: clock.Now(), limit: 2, want: []string{a, d}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := db.ListStale(ctx, tt.before, tt.limit)
			if err != nil {
				t.Fatalf("ListStale() error = %v", err)
			}
			if !reflect.DeepEqual(ids(got), tt.want) && !(len(got) == 0 && len(tt.want) == 0) {
				t.Errorf("ListStale() = %v, want %v", ids(got), tt.want)
			}
		})
	}

	t.Run("touch moves an image to the back", func(t *testing.T) {
		if err := db.Touch(ctx, a); err != nil {
			t.Fatalf("Touch() error = %v", err)
		}
		clock.Advance(time.Minute)
		got, err := db.ListStale(ctx, clock.Now(), 0)
		if err != nil {
			t.Fatalf("ListStale() error = %v", err)
		}
		if want := []string{d, b, a}; !reflect.DeepEqual(ids(got), want) {
			t.Errorf("ListStale() = %v, want %v", ids(got), want)
		}
	})

	t.Run("requeue", func(t *testing.T) {
		if err := db.Requeue(ctx, b); err != nil {
			t.Fatalf("Requeue() error = %v", err)
		}
		got, err := db.GetImageByID(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != job.StatusQueued || !got.UpdatedAt.Equal(clock.Now()) {
			t.Errorf("status, updated_at = %s, %v; want queued, %v", got.Status, got.UpdatedAt, clock.Now())
		}
		// Requeueing a queued image changes nothing and is no error.
		if err := db.Requeue(ctx, a); err != nil {
			t.Errorf("Requeue(queued) error = %v", err)
		}
	})
}

func testKeys(t *testing.T, db *DB) {
	ctx := context.Background()
	clock := newFakeClock()
	db.now = clock.Now

	secret, k, err := db.CreateKey(ctx, "acme", "ci")
	if err != nil {
		t.Fatalf("CreateKey() error = %v", err)
	}
	if len(secret) != 36 || secret[:4] != "glk_" {
		t.Errorf("secret = %q, want glk_ and 32 characters", secret)
	}
	clock.Advance(time.Second)
	secret2, k2, err := db.CreateKey(ctx, "other", "")
	if err != nil {
		t.Fatalf("CreateKey() error = %v", err)
	}
	if secret2 == secret || k2.ID == k.ID {
		t.Fatalf("two keys share a secret or id")
	}
	// A tenant names a blob directory: nothing that is not a plain segment.
	for _, bad := range []string{"", "bad tenant/../x", "..", ".hidden", "a/b", "sp ace", strings.Repeat("x", 65)} {
		if _, _, err := db.CreateKey(ctx, bad, "x"); err == nil || !strings.Contains(err.Error(), "letters, digits") {
			t.Errorf("CreateKey(tenant %q) error = %v; want one that gives the rule", bad, err)
		}
	}

	t.Run("authenticate", func(t *testing.T) {
		tests := []struct {
			name       string
			secret     string
			advance    time.Duration
			wantErr    error
			wantTenant string
			wantUsed   time.Duration // since the start of the subtest; -1: nil
		}{
			{name: "first use records last_used", secret: secret, wantTenant: "acme", wantUsed: 0},
			{name: "within the minute keeps it", secret: secret, advance: 59 * time.Second, wantTenant: "acme", wantUsed: 0},
			{name: "after a minute updates it", secret: secret, advance: 2 * time.Second, wantTenant: "acme", wantUsed: 61 * time.Second},
			{name: "other tenant's key", secret: secret2, wantTenant: "other", wantUsed: 61 * time.Second},
			{name: "unknown", secret: "glk_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", wantErr: ErrUnauthorized},
			{name: "no prefix", secret: secret[4:], wantErr: ErrUnauthorized},
			{name: "empty", secret: "", wantErr: ErrUnauthorized},
		}
		start := clock.Now()
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				clock.Advance(tt.advance)
				got, err := db.Authenticate(ctx, tt.secret)
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Authenticate() error = %v, want %v", err, tt.wantErr)
				}
				if tt.wantErr != nil {
					return
				}
				if got.Tenant != tt.wantTenant {
					t.Errorf("Tenant = %q, want %q", got.Tenant, tt.wantTenant)
				}
				if want := start.Add(tt.wantUsed); got.LastUsed == nil || !got.LastUsed.Equal(want) {
					t.Errorf("LastUsed = %v, want %v", got.LastUsed, want)
				}
			})
		}
	})

	t.Run("list", func(t *testing.T) {
		tests := []struct {
			tenant string
			want   []string
		}{
			{tenant: "", want: []string{k.ID, k2.ID}},
			{tenant: "acme", want: []string{k.ID}},
			{tenant: "nobody", want: nil},
		}
		for _, tt := range tests {
			t.Run("tenant="+tt.tenant, func(t *testing.T) {
				keys, err := db.ListKeys(ctx, tt.tenant)
				if err != nil {
					t.Fatalf("ListKeys() error = %v", err)
				}
				var got []string
				for _, k := range keys {
					got = append(got, k.ID)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("ListKeys() = %v, want %v", got, tt.want)
				}
			})
		}
	})

	t.Run("revoke", func(t *testing.T) {
		if err := db.RevokeKey(ctx, k.ID); err != nil {
			t.Fatalf("RevokeKey() error = %v", err)
		}
		revokedAt := clock.Now()
		clock.Advance(time.Hour)
		if err := db.RevokeKey(ctx, k.ID); err != nil {
			t.Errorf("RevokeKey(again) error = %v", err)
		}
		if err := db.RevokeKey(ctx, "key_missing"); !errors.Is(err, ErrNotFound) {
			t.Errorf("RevokeKey(missing) error = %v, want ErrNotFound", err)
		}
		if _, err := db.Authenticate(ctx, secret); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("Authenticate(revoked) error = %v, want ErrUnauthorized", err)
		}
		if _, err := db.Authenticate(ctx, secret2); err != nil {
			t.Errorf("Authenticate(other key) error = %v", err)
		}
		keys, err := db.ListKeys(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != 1 || keys[0].RevokedAt == nil || !keys[0].RevokedAt.Equal(revokedAt) {
			t.Errorf("ListKeys(acme) = %+v, want one key revoked at %v", keys, revokedAt)
		}
	})
}

func testCountByStatus(t *testing.T, db *DB) {
	ctx := context.Background()
	for n := range 5 {
		mustCreate(t, db, testImage("acme", n))
	}
	mustCreate(t, db, testImage("other", 0))
	mustDone(t, db, testImage("acme", 0).ID)
	mustDone(t, db, testImage("acme", 1).ID)
	if ok, err := db.MarkProcessing(ctx, testImage("acme", 2).ID, 1, nil); err != nil || !ok {
		t.Fatalf("MarkProcessing = %v, %v", ok, err)
	}
	if ok, err := db.MarkFailed(ctx, testImage("other", 0).ID, 0, nil, "dlq"); err != nil || !ok {
		t.Fatalf("MarkFailed = %v, %v", ok, err)
	}

	tests := []struct {
		tenant string
		want   map[job.Status]int
	}{
		{tenant: "acme", want: map[job.Status]int{job.StatusQueued: 2, job.StatusProcessing: 1, job.StatusDone: 2, job.StatusFailed: 0}},
		{tenant: "", want: map[job.Status]int{job.StatusQueued: 2, job.StatusProcessing: 1, job.StatusDone: 2, job.StatusFailed: 1}},
		{tenant: "nobody", want: map[job.Status]int{job.StatusQueued: 0, job.StatusProcessing: 0, job.StatusDone: 0, job.StatusFailed: 0}},
	}
	for _, tt := range tests {
		t.Run("tenant="+tt.tenant, func(t *testing.T) {
			got, err := db.CountByStatus(ctx, tt.tenant)
			if err != nil {
				t.Fatalf("CountByStatus() error = %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("CountByStatus() = %v, want %v", got, tt.want)
			}
		})
	}
}

// testConcurrent has 8 goroutines each make 200 writes (creates, retried
// creates and worker transitions), reading between them, as API handlers and
// workers do; no call may fail (in particular not with SQLITE_BUSY).
func testConcurrent(t *testing.T, db *DB) {
	const (
		workers = 8
		writes  = 200
	)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tenant := fmt.Sprintf("t%d", w%2)
			err := func() error {
				for i := 0; i < writes; {
					img := testImage(tenant, w*writes+i)
					if _, _, err := db.CreateImage(ctx, img); err != nil {
						return err
					}
					if _, created, err := db.CreateImage(ctx, img); err != nil || created {
						return fmt.Errorf("retried create: created = %v, err = %v", created, err)
					}
					if _, err := db.MarkProcessing(ctx, img.ID, 1, nil); err != nil {
						return err
					}
					res := &job.Result{Labels: []job.Label{{Label: "tabby", Score: 0.5}, {Label: "lynx", Score: 0.2}}}
					if _, err := db.SaveResult(ctx, img.ID, 1, nil, res); err != nil {
						return err
					}
					i += 4
					if _, err := db.GetImage(ctx, tenant, img.ID); err != nil {
						return err
					}
					if _, err := db.ListImages(ctx, ListOptions{Tenant: tenant, Label: "tabby", Limit: 20}); err != nil {
						return err
					}
					if _, err := db.CountByStatus(ctx, ""); err != nil {
						return err
					}
				}
				return nil
			}()
			if err != nil {
				errs <- fmt.Errorf("goroutine %d: %w", w, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got, err := db.CountByStatus(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if want := workers * writes / 4; got[job.StatusDone] != want {
		t.Errorf("done images = %d, want %d", got[job.StatusDone], want)
	}
}

// testRacingAttempts races two deliveries of each of 40 images, attempts 1
// and 2, each marking processing and saving a result of its own: whichever
// wins, the image ends done with exactly the winner's result and label rows,
// never a mix.
func testRacingAttempts(t *testing.T, db *DB) {
	const images = 40
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 2*images)
	for n := range images {
		img := mustCreate(t, db, testImage("acme", n))
		for attempt := 1; attempt <= 2; attempt++ {
			wg.Go(func() {
				if _, err := db.MarkProcessing(ctx, img.ID, attempt, nil); err != nil {
					errs <- err
					return
				}
				res := &job.Result{Width: 10 * attempt, Labels: []job.Label{
					{Label: fmt.Sprintf("attempt %d", attempt), Score: 0.9},
					{Label: "common", Score: 0.1},
				}}
				if _, err := db.SaveResult(ctx, img.ID, attempt, nil, res); err != nil {
					errs <- err
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for n := range images {
		id := testImage("acme", n).ID
		got, err := db.GetImageByID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != job.StatusDone || got.Result == nil {
			t.Fatalf("image %d: status %s, result %v; want done with a result", n, got.Status, got.Result)
		}
		winner := got.Result.Width / 10
		if got.Attempts != winner {
			t.Errorf("image %d: attempts = %d, result of attempt %d", n, got.Attempts, winner)
		}
		var labels []string
		rows, err := db.r.QueryContext(ctx, db.d.q(`SELECT label FROM image_labels WHERE image_id = ? ORDER BY rank`), id)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var l string
			if err := rows.Scan(&l); err != nil {
				t.Fatal(err)
			}
			labels = append(labels, l)
		}
		rows.Close()
		if want := []string{fmt.Sprintf("attempt %d", winner), "common"}; !reflect.DeepEqual(labels, want) {
			t.Errorf("image %d: label rows = %v; want %v", n, labels, want)
		}
	}
}
