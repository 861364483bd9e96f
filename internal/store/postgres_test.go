package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"io/fs"
	"net/url"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
)

// testPostgresDSN is the database the PostgreSQL tests use: the machine's
// own unless GLIMPSE_TEST_POSTGRES names another. Each test works in a
// schema of its own, so the database may be shared.
func testPostgresDSN() string {
	if dsn := os.Getenv("GLIMPSE_TEST_POSTGRES"); dsn != "" {
		return dsn
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable&connect_timeout=5"
}

var (
	postgresOnce sync.Once
	postgresErr  error
)

// needPostgres skips tb when no PostgreSQL answers, or fails it when
// GLIMPSE_STRICT_TESTS=1 asks for every test to run.
func needPostgres(tb testing.TB) {
	tb.Helper()
	postgresOnce.Do(func() {
		db, err := sql.Open("pgx", testPostgresDSN())
		if err != nil {
			postgresErr = err
			return
		}
		defer db.Close()
		postgresErr = db.PingContext(context.Background())
	})
	if postgresErr == nil {
		return
	}
	if os.Getenv("GLIMPSE_STRICT_TESTS") == "1" {
		tb.Fatalf("PostgreSQL unavailable (GLIMPSE_TEST_POSTGRES): %v", postgresErr)
	}
	tb.Skipf("PostgreSQL unavailable (set GLIMPSE_TEST_POSTGRES): %v", postgresErr)
}

// testSchema creates an empty schema with a random name and drops it, with
// everything in it, when tb ends.
func testSchema(tb testing.TB) string {
	tb.Helper()
	needPostgres(tb)
	var buf [6]byte
	rand.Read(buf[:])
	schema := "glimpse_test_" + hex.EncodeToString(buf[:])
	admin, err := sql.Open("pgx", testPostgresDSN())
	if err != nil {
		tb.Fatal(err)
	}
	ident := pgx.Identifier{schema}.Sanitize()
	if _, err := admin.Exec(`CREATE SCHEMA ` + ident); err != nil {
		admin.Close()
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		defer admin.Close()
		if _, err := admin.Exec(`DROP SCHEMA ` + ident + ` CASCADE`); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return schema
}

// postgresDSN is the test database's dsn with settings ("key=value") added.
func postgresDSN(tb testing.TB, settings ...string) string {
	tb.Helper()
	u, err := url.Parse(testPostgresDSN())
	if err != nil {
		tb.Fatal(err)
	}
	q := u.Query()
	for _, s := range settings {
		k, v, _ := strings.Cut(s, "=")
		q.Set(k, v)
	}
	// libpq and pgx decode %XX but not + in a URL query.
	u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
	return u.String()
}

// openTestPostgres opens a store in a fresh schema of the test database,
// with settings added to the dsn, and closes it when tb ends.
func openTestPostgres(tb testing.TB, settings ...string) *DB {
	tb.Helper()
	schema := testSchema(tb)
	db, err := Open(context.Background(), postgresDSN(tb, append(settings, "search_path="+schema)...))
	if err != nil {
		tb.Fatalf("Open() error = %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func TestPostgresConnectTimeout(t *testing.T) {
	for dsn, want := range map[string]time.Duration{
		"postgres://u@127.0.0.1:5432/test":                   defaultConnectTimeout,
		"postgres://u@127.0.0.1:5432/test?connect_timeout=2": 2 * time.Second,
	} {
		cfg, err := postgresConfig(dsn)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.ConnectTimeout != want {
			t.Errorf("%s: connect timeout %v; want %v", dsn, cfg.ConnectTimeout, want)
		}
	}
}

func TestPostgres(t *testing.T) {
	needPostgres(t)
	runStoreSuite(t, func(t *testing.T) *DB {
		t.Helper()
		return openTestPostgres(t)
	})
}

// TestPostgresReopen checks that data survives a close and that opening
// again, which runs the migrations again, changes nothing.
func TestPostgresReopen(t *testing.T) {
	ctx := context.Background()
	dsn := postgresDSN(t, "search_path="+testSchema(t))
	img := testImage("acme", 1)
	var secret string
	for i := range 2 {
		db, err := Open(ctx, dsn)
		if err != nil {
			t.Fatalf("Open(%d) error = %v", i, err)
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
		if got.Status != "done" || got.Result == nil {
			t.Errorf("image = %s with result %v, want done with a result", got.Status, got.Result)
		}
		if _, err := db.Authenticate(ctx, secret); err != nil {
			t.Errorf("Authenticate() error = %v", err)
		}
		var versions int
		if err := db.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM goose_db_version WHERE version_id > 0`).Scan(&versions); err != nil {
			t.Fatal(err)
		}
		files, err := fs.Glob(migrationsFS, "migrations/postgres/*.sql")
		if err != nil {
			t.Fatal(err)
		}
		if versions != len(files) {
			t.Errorf("applied migrations = %d, want each of the %d once", versions, len(files))
		}
		if err := db.Ping(ctx); err != nil {
			t.Errorf("Ping() error = %v", err)
		}
		db.Close()
	}
}

// TestPostgresConcurrentOpen has several processes' worth of stores open
// one new schema at once: they take turns to migrate it, and all succeed.
func TestPostgresConcurrentOpen(t *testing.T) {
	dsn := postgresDSN(t, "search_path="+testSchema(t))
	var wg sync.WaitGroup
	dbs := make([]*DB, 4)
	errs := make([]error, len(dbs))
	for i := range dbs {
		wg.Go(func() { dbs[i], errs[i] = Open(context.Background(), dsn) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open(%d) error = %v", i, err)
			continue
		}
		dbs[i].Close()
	}
}

// TestPostgresCreatesSchema checks that Open creates the schema its
// search_path names, quoted or not, and puts the tables there.
func TestPostgresCreatesSchema(t *testing.T) {
	ctx := context.Background()
	needPostgres(t)
	var buf [4]byte
	rand.Read(buf[:])
	suffix := hex.EncodeToString(buf[:])
	tests := []struct {
		searchPath string
		schema     string
	}{
		{searchPath: "Glimpse_Test_Plain_" + suffix + ", public", schema: "glimpse_test_plain_" + suffix},
		{searchPath: `"Glimpse Test ""Quoted"" ` + suffix + `"`, schema: `Glimpse Test "Quoted" ` + suffix},
	}
	for _, tt := range tests {
		t.Run(tt.schema, func(t *testing.T) {
			admin, err := sql.Open("pgx", testPostgresDSN())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				defer admin.Close()
				if _, err := admin.Exec(`DROP SCHEMA IF EXISTS ` + pgx.Identifier{tt.schema}.Sanitize() + ` CASCADE`); err != nil {
					t.Errorf("drop schema: %v", err)
				}
			})
			db, err := Open(ctx, postgresDSN(t, "search_path="+tt.searchPath))
			if err != nil {
				t.Fatalf("Open() error = %v", err)
			}
			defer db.Close()
			mustCreate(t, db, testImage("acme", 1))
			var n int
			if err := admin.QueryRow(`SELECT COUNT(*) FROM information_schema.tables
				WHERE table_schema = $1 AND table_name = 'images'`, tt.schema).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 1 {
				t.Errorf("images tables in schema %q = %d, want 1", tt.schema, n)
			}
		})
	}
}

func TestFirstSchema(t *testing.T) {
	tests := []struct {
		path string
		want string
	}{
		{path: "", want: ""},
		{path: "glimpse", want: "glimpse"},
		{path: " Glimpse , public", want: "glimpse"},
		{path: `"$user", public`, want: ""},
		{path: "$user", want: ""},
		{path: `"My ""Schema""", public`, want: `My "Schema"`},
		{path: `"unterminated`, want: ""},
	}
	for _, tt := range tests {
		if got := firstSchema(tt.path); got != tt.want {
			t.Errorf("firstSchema(%q) = %q; want %q", tt.path, got, tt.want)
		}
	}
}

func TestOpenPostgresBadDSN(t *testing.T) {
	_, err := Open(context.Background(), "postgres://u:secret@127.0.0.1:1/db?connect_timeout=1&sslmode=disable")
	if err == nil {
		t.Fatal("Open(nothing listening) error = nil, want an error")
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("Open() error %q shows the password", err)
	}
}

// TestMigrationsMirror checks that both engines' migrations make the same
// tables with the same columns, in the same order, and the same indexes.
func TestMigrationsMirror(t *testing.T) {
	names := func(dir string) []string {
		files, err := fs.Glob(migrationsFS, dir+"/*.sql")
		if err != nil {
			t.Fatal(err)
		}
		for i, f := range files {
			files[i] = strings.TrimPrefix(f, dir+"/")
		}
		return files
	}
	if sq, pg := names("migrations/sqlite"), names("migrations/postgres"); !reflect.DeepEqual(sq, pg) {
		t.Fatalf("migration files: sqlite %v, postgres %v", sq, pg)
	}

	ctx := context.Background()
	lite, pg := openTestSQLite(t), openTestPostgres(t)
	strs := func(db *DB, query string, args ...any) []string {
		t.Helper()
		rows, err := db.r.QueryContext(ctx, query, args...)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	for _, table := range []string{"images", "image_labels", "api_keys"} {
		sq := strs(lite, `SELECT name FROM pragma_table_info(?) ORDER BY cid`, table)
		pc := strs(pg, `SELECT column_name FROM information_schema.columns
			WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position`, table)
		if len(sq) == 0 || !reflect.DeepEqual(sq, pc) {
			t.Errorf("%s columns: sqlite %v, postgres %v", table, sq, pc)
		}
	}
	sq := strs(lite, `SELECT name FROM sqlite_master
		WHERE type = 'index' AND name NOT LIKE 'sqlite_autoindex%' ORDER BY name`)
	pc := strs(pg, `SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()
		AND indexname NOT LIKE '%\_pkey' AND indexname NOT LIKE '%\_key' ORDER BY indexname COLLATE "C"`)
	if !reflect.DeepEqual(sq, pc) {
		t.Errorf("indexes: sqlite %v, postgres %v", sq, pc)
	}
}
