package blobstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"

	"github.com/glimpse-oss/glimpse/internal/durable"
)

// backends opens one store per backend: file:// (its signed URLs served by
// a test server, as the web server serves them), mem://, and s3:// on a
// versitygw started for the test (skipped when versitygw is missing).
var backends = []struct {
	name string
	open func(t *testing.T) *Store
}{
	{"file", func(t *testing.T) *Store { return openFileBackend(t) }},
	{"file-sidecar", func(t *testing.T) *Store {
		// A file system without user extended attributes: attributes go
		// to fileblob's .attrs sidecars.
		s := openFileBackend(t)
		s.fs.xattrs.Store(0)
		return s
	}},
	{"file-syncfs", func(t *testing.T) *Store {
		// Puts made durable by group-committed syncfs (as serve runs).
		needSyncfs(t)
		return openFileBackendConfig(t, Config{Syncers: newSyncers(t)})
	}},
	{"mem", func(t *testing.T) *Store {
		s, err := Open(context.Background(), "mem://")
		if err != nil {
			t.Fatalf("Open(mem://): %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}},
	{"s3", func(t *testing.T) *Store {
		u := startVersityGW(t)
		s, err := Open(context.Background(), u)
		if err != nil {
			t.Fatalf("Open(%q): %v", u, err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}},
}

// openFileBackend opens a file:// store whose signed URLs a test server
// serves.
func openFileBackend(t *testing.T) *Store { return openFileBackendConfig(t, Config{}) }

// openFileBackendConfig is openFileBackend with cfg (its BaseURL is the
// test server's).
func openFileBackendConfig(t *testing.T, cfg Config) *Store {
	var s *Store
	srv := httptest.NewServer(signedHandler(&s))
	t.Cleanup(srv.Close)
	cfg.BaseURL = srv.URL + "/blobs"
	s, err := OpenConfig(context.Background(), "file://"+filepath.ToSlash(filepath.Join(t.TempDir(), "blobs")), cfg)
	if err != nil {
		t.Fatalf("OpenConfig(file): %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if cfg.Syncers != nil && s.fs.syncer == nil {
		t.Fatalf("the file store fell back to fsync: syncfs is unsupported under %s", s.dir)
	}
	return s
}

// needSyncfs skips the test, or fails it under GLIMPSE_STRICT_TESTS=1, when
// syncfs cannot be relied on for the test's temporary directories.
func needSyncfs(t *testing.T) {
	t.Helper()
	if err := durable.Supported(os.TempDir()); err != nil {
		if os.Getenv("GLIMPSE_STRICT_TESTS") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

// newSyncers returns a durable.Set closed with the test.
func newSyncers(t *testing.T) *durable.Set {
	set := durable.NewSet()
	t.Cleanup(func() { set.Close() })
	return set
}

// TestPutSyncsThroughTheSyncer checks that a file store given Syncers makes
// its Puts durable with the shared flushes, one per Put when they come one
// at a time.
func TestPutSyncsThroughTheSyncer(t *testing.T) {
	needSyncfs(t)
	set := newSyncers(t)
	s := openFileBackendConfig(t, Config{Syncers: set})
	ctx := context.Background()
	for i := range 3 {
		if err := s.Put(ctx, fmt.Sprintf("inputs/acme/img_%d", i), []byte("bytes"), "image/jpeg"); err != nil {
			t.Fatalf("Put: %v", err)
		}
	}
	sy, err := set.For(s.dir)
	if err != nil {
		t.Fatal(err)
	}
	if rounds, callers := sy.Stats(); rounds != 3 || callers != 3 {
		t.Errorf("Stats() = %d rounds, %d callers; want 3, 3", rounds, callers)
	}
}

// signedHandler serves signed file:// URLs the way the web server does:
// CheckSignedRequest, then GET or PUT the blob.
func signedHandler(s **Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, err := (*s).CheckSignedRequest(r.Context(), r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			b, err := (*s).Get(r.Context(), key)
			if err != nil {
				http.Error(w, err.Error(), http.StatusNotFound)
				return
			}
			w.Write(b)
		case http.MethodPut:
			b, err := io.ReadAll(r.Body)
			if err == nil {
				err = (*s).Put(r.Context(), key, b, r.Header.Get("Content-Type"))
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
			}
		default:
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		}
	})
}

// TestConformance runs the same behaviour checks over every backend.
func TestConformance(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, s *Store)
	}{
		{"put get", testPutGet},
		{"overwrite", testOverwrite},
		{"missing", testMissing},
		{"reader attrs", testReader},
		{"delete", testDelete},
		{"bad keys", testBadKeys},
		{"list", testList},
		{"ping", func(t *testing.T, s *Store) {
			if err := s.Ping(context.Background()); err != nil {
				t.Errorf("Ping: %v", err)
			}
		}},
		{"signed get", testSignedGet},
		{"signed put", testSignedPut},
		{"signed tampered", testSignedTampered},
		{"signed expired", testSignedExpired},
		{"sign options", testSignOptions},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) { tt.run(t, s) })
			}
		})
	}
}

func testPutGet(t *testing.T, s *Store) {
	ctx := context.Background()
	tests := []struct {
		key string
		b   []byte
		ct  string
	}{
		{"inputs/t1/img_0001", []byte("\xff\xd8\xff jpeg bytes"), "image/jpeg"},
		{"results/img_0001.json", []byte(`{"labels":[]}`), "application/json"},
		{"empty", nil, "application/octet-stream"},
		{"deep/a/b/c/d", bytes.Repeat([]byte{7}, 1<<20), "image/png"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			if err := s.Put(ctx, tt.key, tt.b, tt.ct); err != nil {
				t.Fatalf("Put: %v", err)
			}
			got, err := s.Get(ctx, tt.key)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if !bytes.Equal(got, tt.b) {
				t.Errorf("Get = %d bytes; want %d", len(got), len(tt.b))
			}
			a, err := s.Stat(ctx, tt.key)
			if err != nil {
				t.Fatalf("Stat: %v", err)
			}
			if a.ContentType != tt.ct || a.Size != int64(len(tt.b)) {
				t.Errorf("Stat = %+v; want type %q size %d", a, tt.ct, len(tt.b))
			}
			if len(a.SHA256) != 64 {
				t.Errorf("Stat SHA256 = %q; want a hex digest", a.SHA256)
			}
			ok, err := s.Exists(ctx, tt.key)
			if err != nil || !ok {
				t.Errorf("Exists = %v, %v; want true, nil", ok, err)
			}
		})
	}
}

func testOverwrite(t *testing.T, s *Store) {
	ctx := context.Background()
	for _, v := range []string{"first", "second, longer"} {
		if err := s.Put(ctx, "over/write", []byte(v), "text/plain"); err != nil {
			t.Fatalf("Put: %v", err)
		}
		got, err := s.Get(ctx, "over/write")
		if err != nil || string(got) != v {
			t.Errorf("Get = %q, %v; want %q", got, err, v)
		}
	}
}

func testMissing(t *testing.T, s *Store) {
	ctx := context.Background()
	if _, err := s.Get(ctx, "no/such"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(missing) = %v; want ErrNotFound", err)
	}
	if _, _, err := s.NewReader(ctx, "no/such"); !errors.Is(err, ErrNotFound) {
		t.Errorf("NewReader(missing) = %v; want ErrNotFound", err)
	}
	if _, err := s.Stat(ctx, "no/such"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Stat(missing) = %v; want ErrNotFound", err)
	}
	if ok, err := s.Exists(ctx, "no/such"); ok || err != nil {
		t.Errorf("Exists(missing) = %v, %v; want false, nil", ok, err)
	}
}

func testReader(t *testing.T, s *Store) {
	ctx := context.Background()
	want := []byte("streamed bytes")
	if err := s.Put(ctx, "r/1", want, "image/webp"); err != nil {
		t.Fatalf("Put: %v", err)
	}
	r, a, err := s.NewReader(ctx, "r/1")
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("read = %q, %v; want %q", got, err, want)
	}
	if a.Size != int64(len(want)) || a.ContentType != "image/webp" || a.ModTime.IsZero() {
		t.Errorf("Attrs = %+v; want size %d, image/webp, a mod time", a, len(want))
	}
}

func testDelete(t *testing.T, s *Store) {
	ctx := context.Background()
	if err := s.Put(ctx, "d/1", []byte("x"), "text/plain"); err != nil {
		t.Fatalf("Put: %v", err)
	}
	for i := 0; i < 2; i++ { // the second delete is of a missing key
		if err := s.Delete(ctx, "d/1"); err != nil {
			t.Fatalf("Delete #%d: %v", i, err)
		}
	}
	if ok, _ := s.Exists(ctx, "d/1"); ok {
		t.Errorf("Exists after Delete = true; want false")
	}
}

func testBadKeys(t *testing.T, s *Store) {
	ctx := context.Background()
	for _, key := range []string{"", "/abs", "a//b", "a/", "../x", "a/../b", "a/./b", "..", "a\\b"} {
		t.Run(key, func(t *testing.T) {
			if err := s.Put(ctx, key, []byte("x"), "text/plain"); !errors.Is(err, ErrBadKey) {
				t.Errorf("Put(%q) = %v; want ErrBadKey", key, err)
			}
			if _, err := s.Get(ctx, key); !errors.Is(err, ErrBadKey) {
				t.Errorf("Get(%q) = %v; want ErrBadKey", key, err)
			}
			if err := s.Delete(ctx, key); !errors.Is(err, ErrBadKey) {
				t.Errorf("Delete(%q) = %v; want ErrBadKey", key, err)
			}
			if _, err := s.Exists(ctx, key); !errors.Is(err, ErrBadKey) {
				t.Errorf("Exists(%q) = %v; want ErrBadKey", key, err)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		url  string
		want error
	}{
		{"", ErrBadURL},
		{"relative/dir", ErrBadURL},
		{"file://host/dir", ErrBadURL},
		{"file:relative", ErrBadURL},
		{"nosuch://bucket", nil}, // any error
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			s, err := Open(ctx, tt.url)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%q) = nil error", tt.url)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Open(%q) = %v; want %v", tt.url, err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "blobstore: ") {
				t.Errorf("Open(%q) error %q lacks the package prefix", tt.url, err)
			}
		})
	}
}

// TestFileLayout checks that file:// creates its directory, stores blobs
// as plain files under their key and leaves no temp files behind.
func TestFileLayout(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "new", "blobs")
	s, err := Open(ctx, "file://"+filepath.ToSlash(dir))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	if err := s.Put(ctx, "inputs/t1/img_1", []byte("abc"), "image/png"); err != nil {
		t.Fatalf("Put: %v", err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "inputs", "t1", "img_1"))
	if err != nil || string(got) != "abc" {
		t.Fatalf("file = %q, %v; want %q", got, err, "abc")
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "inputs", "t1"))
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temp file %s left behind", e.Name())
		}
	}
}

// TestFileReadsFileblob checks that a directory written by gocloud.dev's
// fileblob (attributes in .attrs sidecars) reads the same through Store,
// that a Put over such a blob drops its stale sidecar, and that Delete
// removes both files.
func TestFileReadsFileblob(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	fb, err := fileblob.OpenBucket(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = fb.WriteAll(ctx, "results/img_1.json", []byte(`{"a":1}`), &blob.WriterOptions{
		ContentType: "application/json",
		Metadata:    map[string]string{MetadataSHA256: "feedface"},
	})
	fb.Close()
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, "file://"+filepath.ToSlash(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if b, err := s.Get(ctx, "results/img_1.json"); err != nil || string(b) != `{"a":1}` {
		t.Errorf("Get = %q, %v", b, err)
	}
	a, err := s.Stat(ctx, "results/img_1.json")
	if err != nil || a.ContentType != "application/json" || a.SHA256 != "feedface" || a.Size != 7 {
		t.Errorf("Stat = %+v, %v; want the sidecar's type and digest", a, err)
	}
	sidecar := filepath.Join(dir, "results", "img_1.json.attrs")
	if err := s.Put(ctx, "results/img_1.json", []byte(`{"a":2}`), "text/plain"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sidecar); s.fs.xattrs.Load() == 1 && !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale sidecar after Put: %v", err)
	}
	if a, err := s.Stat(ctx, "results/img_1.json"); err != nil || a.ContentType != "text/plain" || len(a.SHA256) != 64 {
		t.Errorf("Stat after Put = %+v, %v; want the new type and digest", a, err)
	}
	if err := s.Delete(ctx, "results/img_1.json"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(dir, "results", "img_1.json"), sidecar} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s after Delete: %v", filepath.Base(p), err)
		}
	}
	if err := s.Put(ctx, "x/y.attrs", []byte("z"), "text/plain"); !errors.Is(err, ErrBadKey) {
		t.Errorf("Put of a key ending in .attrs = %v; want ErrBadKey", err)
	}
}

// TestFileDirRemoved checks that a Put still works after its directory was
// removed from under the store (whose directory handle is cached).
func TestFileDirRemoved(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, "file://"+filepath.ToSlash(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Put(ctx, "results/a.json", []byte("1"), "application/json"); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "results")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "results/b.json", []byte("2"), "application/json"); err != nil {
		t.Fatalf("Put after its directory was removed: %v", err)
	}
	if b, err := s.Get(ctx, "results/b.json"); err != nil || string(b) != "2" {
		t.Errorf("Get = %q, %v", b, err)
	}
}

func TestSignedURL(t *testing.T) {
	ctx := context.Background()
	s, err := OpenConfig(ctx, "file://"+filepath.ToSlash(t.TempDir()), Config{
		SigningKey: []byte("0123456789abcdef0123456789abcdef"),
		BaseURL:    "https://glimpse.example/blobs",
	})
	if err != nil {
		t.Fatalf("OpenConfig: %v", err)
	}
	defer s.Close()
	raw, err := s.SignedURL(ctx, "inputs/t1/img_1", "GET", time.Hour)
	if err != nil {
		t.Fatalf("SignedURL: %v", err)
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("parse %q: %v", raw, err)
	}
	if u.Host != "glimpse.example" {
		t.Errorf("signed url host = %q; want glimpse.example", u.Host)
	}
	key, method, err := s.KeyFromSignedURL(ctx, u)
	if err != nil || key != "inputs/t1/img_1" || method != "GET" {
		t.Errorf("KeyFromSignedURL = %q, %q, %v; want inputs/t1/img_1, GET, nil", key, method, err)
	}
	forged := *u
	q := forged.Query()
	q.Set("obj", "inputs/t2/img_2")
	forged.RawQuery = q.Encode()
	if _, _, err := s.KeyFromSignedURL(ctx, &forged); !errors.Is(err, ErrBadSignature) {
		t.Errorf("KeyFromSignedURL(forged) = %v; want ErrBadSignature", err)
	}
	mem, err := Open(ctx, "mem://")
	if err != nil {
		t.Fatalf("Open mem: %v", err)
	}
	defer mem.Close()
	if _, _, err := mem.KeyFromSignedURL(ctx, u); !errors.Is(err, ErrNoSigning) {
		t.Errorf("mem KeyFromSignedURL = %v; want ErrNoSigning", err)
	}
}

// TestS3Routes checks that s3:// URLs reach the s3blob driver; opening does
// not contact the server.
func TestS3Routes(t *testing.T) {
	s, err := Open(context.Background(), "s3://glimpse-test?region=us-east-1")
	if err != nil {
		t.Fatalf("Open(s3://): %v", err)
	}
	s.Close()
}

// TestPutDigest checks that a digest handed to PutDigest is recorded as
// given and that an empty one is computed, on every backend that records
// metadata locally.
func TestPutDigest(t *testing.T) {
	ctx := context.Background()
	for _, url := range []string{"file://" + filepath.ToSlash(t.TempDir()), "mem://"} {
		s, err := Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.PutDigest(ctx, "a/given", []byte("abc"), "text/plain", "00ff"); err != nil {
			t.Fatal(err)
		}
		if a, err := s.Stat(ctx, "a/given"); err != nil || a.SHA256 != "00ff" {
			t.Errorf("%s: Stat after PutDigest(00ff) = %+v, %v", url, a, err)
		}
		if err := s.PutDigest(ctx, "a/computed", []byte("abc"), "text/plain", ""); err != nil {
			t.Fatal(err)
		}
		const abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
		if a, err := s.Stat(ctx, "a/computed"); err != nil || a.SHA256 != abc {
			t.Errorf("%s: Stat after PutDigest(\"\") = %+v, %v; want sha256(abc)", url, a, err)
		}
	}
}

func testList(t *testing.T, s *Store) {
	ctx := context.Background()
	for _, k := range []string{"ls/a/1.json", "ls/a/2.json", "ls/a/sub/3.json", "ls/b/4.json", "lsx/5.json"} {
		if err := s.Put(ctx, k, []byte(k), "application/json"); err != nil {
			t.Fatal(err)
		}
	}
	list := func(prefix string) []string {
		var got []string
		if err := s.List(ctx, prefix, func(k string) error { got = append(got, k); return nil }); err != nil {
			t.Fatalf("List(%q): %v", prefix, err)
		}
		sort.Strings(got)
		return got
	}
	if got, want := list("ls/a/"), []string{"ls/a/1.json", "ls/a/2.json", "ls/a/sub/3.json"}; !reflect.DeepEqual(got, want) {
		t.Errorf("List(ls/a/) = %v; want %v", got, want)
	}
	if got, want := list("ls/"), []string{"ls/a/1.json", "ls/a/2.json", "ls/a/sub/3.json", "ls/b/4.json"}; !reflect.DeepEqual(got, want) {
		t.Errorf("List(ls/) = %v; want %v", got, want)
	}
	if got := list("none/"); len(got) != 0 {
		t.Errorf("List(none/) = %v; want nothing", got)
	}
	stop := errors.New("stop")
	n := 0
	if err := s.List(ctx, "ls/", func(string) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Errorf("List with fn failing = %v after %d calls; want fn's error after 1", err, n)
	}
}
