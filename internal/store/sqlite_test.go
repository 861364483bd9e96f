package store

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/glimpse-oss/glimpse/internal/durable"
	"github.com/glimpse-oss/glimpse/internal/job"
)

// openTestSQLite opens a fresh SQLite store in a temporary directory and
// closes it when the test ends.
func openTestSQLite(t *testing.T) *DB {
	t.Helper()
	path := filepath.Join(t.TempDir(), "glimpse.db")
	db, err := Open(context.Background(), "sqlite://"+path)
	if err != nil {
		t.Fatalf("Open() error = %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close() error = %v", err)
		}
	})
	return db
}

func TestSQLite(t *testing.T) {
	runStoreSuite(t, openTestSQLite)
}

// TestSQLiteSyncfs runs the suite on a file database whose writes are made
// durable by group-committed syncfs, as serve opens it, and checks that
// the durable writes flush and the lazy one does not.
func TestSQLiteSyncfs(t *testing.T) {
	if err := durable.Supported(os.TempDir()); err != nil {
		if os.Getenv("GLIMPSE_STRICT_TESTS") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	open := func(t *testing.T) (*DB, *durable.Syncer) {
		t.Helper()
		set := durable.NewSet()
		t.Cleanup(func() { set.Close() })
		dir := t.TempDir()
		db, err := OpenConfig(context.Background(), "sqlite://"+filepath.Join(dir, "glimpse.db"), Config{Syncers: set})
		if err != nil {
			t.Fatalf("OpenConfig() error = %v", err)
		}
		t.Cleanup(func() { db.Close() })
		if db.syncer == nil {
			t.Fatalf("the database fell back to synchronous=FULL: syncfs is unsupported under %s", dir)
		}
		sy, err := set.For(dir)
		if err != nil {
			t.Fatal(err)
		}
		return db, sy
	}
	runStoreSuite(t, func(t *testing.T) *DB { db, _ := open(t); return db })

	db, sy := open(t)
	ctx := context.Background()
	var mode int
	if err := db.w.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&mode); err != nil || mode != 1 {
		t.Errorf("synchronous = %d, %v; want 1 (NORMAL)", mode, err)
	}
	flushes := func() uint64 { r, _ := sy.Stats(); return r }
	before := flushes()
	img := testImage("acme", 1)
	if _, _, err := db.CreateImage(ctx, img); err != nil {
		t.Fatal(err)
	}
	if got := flushes(); got != before+1 {
		t.Errorf("CreateImage flushed %d times; want 1", got-before)
	}
	before = flushes()
	if _, err := db.MarkProcessing(ctx, img.ID, 1, nil); err != nil {
		t.Fatal(err)
	}
	if got := flushes(); got != before {
		t.Errorf("MarkProcessing (lazy) flushed %d times; want 0", got-before)
	}
	if _, err := db.SaveResult(ctx, img.ID, 1, nil, &job.Result{}); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteImage(ctx, "acme", img.ID); err != nil {
		t.Fatal(err)
	}
	if got := flushes(); got != before+2 {
		t.Errorf("SaveResult and DeleteImage flushed %d times; want 2", got-before)
	}
}

func TestSQLiteMemory(t *testing.T) {
	runStoreSuite(t, func(t *testing.T) *DB {
		t.Helper()
		db, err := Open(context.Background(), ":memory:")
		if err != nil {
			t.Fatalf("Open() error = %v", err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	})
}

func TestParseDSN(t *testing.T) {
	tests := []struct {
		dsn      string
		wantKind string
		wantPath string
		wantErr  bool
	}{
		{dsn: "sqlite:///abs/path/glimpse.db", wantKind: "sqlite", wantPath: "/abs/path/glimpse.db"},
		{dsn: "sqlite://relative.db", wantKind: "sqlite", wantPath: "relative.db"},
		{dsn: "file:path.db", wantKind: "sqlite", wantPath: "path.db"},
		{dsn: "file:path.db?mode=rwc", wantKind: "sqlite", wantPath: "path.db"},
		{dsn: "data/glimpse.db", wantKind: "sqlite", wantPath: "data/glimpse.db"},
		{dsn: ":memory:", wantKind: "sqlite", wantPath: ":memory:"},
		{dsn: "postgres://u@h/db", wantKind: "postgres"},
		{dsn: "postgresql://u@h/db", wantKind: "postgres"},
		{dsn: "", wantErr: true},
		{dsn: "sqlite://", wantErr: true},
		{dsn: "mysql://x", wantErr: true},
		{dsn: "glimpse.sqlite", wantErr: true},
		{dsn: "sqlite://we?ird.db", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.dsn, func(t *testing.T) {
			kind, path, err := parseDSN(tt.dsn)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseDSN() error = %v, want error %v", err, tt.wantErr)
			}
			if kind != tt.wantKind || path != tt.wantPath {
				t.Errorf("parseDSN() = %q, %q; want %q, %q", kind, path, tt.wantKind, tt.wantPath)
			}
		})
	}
}

// TestSQLiteReopen checks that data survives a close and that opening
// again, which runs the migrations again, changes nothing.
func TestSQLiteReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	dsns := []string{
		"sqlite://" + filepath.Join(dir, "sub", "glimpse.db"),
		"file:" + filepath.Join(dir, "sub", "glimpse.db"),
		filepath.Join(dir, "sub", "glimpse.db"),
	}
	img := testImage("acme", 1)
	var secret string
	for i, dsn := range dsns {
		t.Run(dsn, func(t *testing.T) {
			db, err := Open(ctx, dsn)
			if err != nil {
				t.Fatalf("Open() error = %v", err)
			}
			defer db.Close()
			if err := db.Ping(ctx); err != nil {
				t.Fatalf("Ping() error = %v", err)
			}
			if i == 0 {
				mustCreate(t, db, img)
				mustDone(t, db, img.ID, "tabby")
				if secret, _, err = db.CreateKey(ctx, "acme", "ci"); err != nil {
					t.Fatal(err)
				}
			}
			got, err := db.GetImage(ctx, "acme", img.ID)
			if err != nil {
				t.Fatalf("GetImage() error = %v", err)
			}
			if got.Status != job.StatusDone || got.Result == nil {
				t.Errorf("image = %s with result %v, want done with a result", got.Status, got.Result)
			}
			if _, err := db.Authenticate(ctx, secret); err != nil {
				t.Errorf("Authenticate() error = %v", err)
			}
			var versions int
			if err := db.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM goose_db_version WHERE version_id > 0`).Scan(&versions); err != nil {
				t.Fatal(err)
			}
			files, err := fs.Glob(migrationsFS, "migrations/sqlite/*.sql")
			if err != nil {
				t.Fatal(err)
			}
			if versions != len(files) {
				t.Errorf("applied migrations = %d, want each of the %d once", versions, len(files))
			}
		})
	}
}

// TestSQLiteSecretNotStored checks that an API key's secret appears nowhere
// in the database files, only its hash.
func TestSQLiteSecretNotStored(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := Open(ctx, filepath.Join(dir, "glimpse.db"))
	if err != nil {
		t.Fatal(err)
	}
	secret, _, err := db.CreateKey(ctx, "acme", "ci")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "glimpse.db*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no database files: %v", err)
	}
	hashFound := false
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(secret)) || bytes.Contains(b, []byte(secret[4:])) {
			t.Errorf("%s contains the secret", filepath.Base(f))
		}
		hashFound = hashFound || bytes.Contains(b, []byte(hashSecret(secret)))
	}
	if !hashFound {
		t.Errorf("the secret's hash is in no database file")
	}
}

// TestSQLitePragmas checks the durability and concurrency settings.
func TestSQLitePragmas(t *testing.T) {
	db := openTestSQLite(t)
	ctx := context.Background()
	// A lazy write (MarkProcessing) must hand the connection back FULL.
	if _, _, err := db.CreateImage(ctx, &job.Image{ID: "img_pragma", Tenant: "t", Filename: "a.jpg",
		ContentType: "image/jpeg", SHA256: "ab", Status: job.StatusQueued, Features: []job.Feature{job.FeatureLabels}}); err != nil {
		t.Fatal(err)
	}
	if ok, err := db.MarkProcessing(ctx, "img_pragma", 1, nil); !ok || err != nil {
		t.Fatalf("MarkProcessing = %v, %v", ok, err)
	}
	var mode int
	if err := db.w.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&mode); err != nil || mode != 2 {
		t.Errorf("synchronous after a lazy write = %d, %v; want 2 (FULL)", mode, err)
	}
	tests := []struct {
		db     string
		pragma string
		want   string
	}{
		{db: "w", pragma: "journal_mode", want: "wal"},
		{db: "w", pragma: "synchronous", want: "2"},
		{db: "w", pragma: "foreign_keys", want: "1"},
		{db: "w", pragma: "busy_timeout", want: "10000"},
		{db: "r", pragma: "query_only", want: "1"},
		{db: "r", pragma: "foreign_keys", want: "1"},
		{db: "r", pragma: "busy_timeout", want: "10000"},
	}
	for _, tt := range tests {
		t.Run(tt.db+"/"+tt.pragma, func(t *testing.T) {
			conn := db.w
			if tt.db == "r" {
				conn = db.r
			}
			var got string
			if err := conn.QueryRowContext(ctx, "PRAGMA "+tt.pragma).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("PRAGMA %s = %q, want %q", tt.pragma, got, tt.want)
			}
		})
	}
}
