package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/glimpse-oss/glimpse/internal/blobstore"
	"github.com/glimpse-oss/glimpse/internal/durable"
	"github.com/glimpse-oss/glimpse/internal/natsembed"
	"github.com/glimpse-oss/glimpse/internal/queue"
	"github.com/glimpse-oss/glimpse/internal/store"
)

// engineFlags choose the queue, blob store and database by URL. Empty URLs
// mean the embedded defaults under the data directory — what serve uses.
type engineFlags struct {
	data       string
	queueURL   string
	blobURL    string
	dbURL      string
	replicas   int
	maxDeliver int
	ackWait    time.Duration
	signingKey string
	blobPublic string
}

func (e *engineFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&e.data, "data", "./data", "directory for the embedded queue, blobs and database")
	fl.StringVar(&e.queueURL, "queue", "", "NATS JetStream servers, e.g. nats://n1:4222,nats://n2:4222 (default: embedded under --data)")
	fl.StringVar(&e.blobURL, "blob", "", "blob store URL: file:///dir, s3://bucket?endpoint=…&region=…, gs://…, azblob://… (default: files under --data)")
	fl.StringVar(&e.dbURL, "db", "", "database URL: sqlite:///path.db or postgres://user@host/db (default: SQLite under --data)")
	fl.IntVar(&e.replicas, "replicas", 1, "JetStream stream replicas (3 on a cluster)")
	fl.IntVar(&e.maxDeliver, "max-deliver", 5, "attempts per job before it is dead-lettered and marked failed")
	fl.DurationVar(&e.ackWait, "ack-wait", 30*time.Second, "how long a job may go without a worker heartbeat before it is redelivered")
	fl.StringVar(&e.blobPublic, "blob-public-url", "", "the --blob S3 bucket as clients outside reach it (same bucket, their endpoint, e.g. s3://glimpse?endpoint=http://localhost:7070&…): pre-signed upload URLs are made for it")
	fl.StringVar(&e.signingKey, "signing-key", "", "secret (32+ characters) that signs pre-signed upload URLs of file:// blobs; API replicas sharing those blobs need the same one (default: kept in DATA/signing.key for the default blobs, else random per process)")
}

// minSigningKey is the shortest --signing-key accepted.
const minSigningKey = 32

// signingKey returns the key that signs file:// URLs: --signing-key, else
// for the default blobs under the data directory a key kept beside them
// (so that URLs handed out survive a restart), else nil (a random key).
func (e *engineFlags) signingKeyFor(dataDir string) ([]byte, error) {
	if e.signingKey != "" {
		if len(e.signingKey) < minSigningKey {
			return nil, fmt.Errorf("--signing-key is %d characters; use at least %d (e.g. openssl rand -hex 32)", len(e.signingKey), minSigningKey)
		}
		return []byte(e.signingKey), nil
	}
	if e.blobURL != "" {
		return nil, nil
	}
	return loadOrCreateKey(filepath.Join(dataDir, "signing.key"))
}

// loadOrCreateKey reads the hex key in path, or makes a random one there
// (readable by this user only) when the file does not exist.
func loadOrCreateKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		key, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(key) < minSigningKey {
			return nil, fmt.Errorf("%s does not hold a hex key of %d bytes or more; delete it to make a new one", path, minSigningKey)
		}
		return key, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	key := make([]byte, minSigningKey)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	// Written whole to a temp file (CreateTemp makes it 0600), then linked
	// into place: a process starting at the same time sees no key or the
	// whole key, and when another one linked its key first, both use that
	// one.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".signing.key.*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(hex.EncodeToString(key) + "\n"); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, os.ErrExist) {
		return loadOrCreateKey(path)
	} else if err != nil {
		return nil, err
	}
	return key, nil
}

// engines are the open queue, blob store and database of one process.
type engines struct {
	q       *queue.Queue
	blobs   *blobstore.Store
	db      *store.DB
	dataDir string
	// syncers group the flushes of the engines that keep files on local
	// disks (the embedded queue, file blobs, SQLite): one syncfs per file
	// system makes the writes of many uploads and jobs durable at once.
	syncers *durable.Set
	// where says in words what each engine is, for the start-up banner.
	where   map[string]string
	closers []func()
}

// close releases everything in reverse order of opening.
func (e *engines) close() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
}

// openEngines connects to (or starts) the queue, blob store and database.
func openEngines(ctx context.Context, log *slog.Logger, reg prometheus.Registerer, f engineFlags) (_ *engines, err error) {
	e := &engines{where: map[string]string{}, syncers: durable.NewSet()}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	// Closed last, after every engine that syncs through it.
	e.closers = append(e.closers, func() { e.syncers.Close() })
	if err := registerSyncMetrics(reg, e.syncers); err != nil {
		return nil, err
	}
	if e.dataDir, err = filepath.Abs(f.data); err != nil {
		return nil, err
	}
	needData := f.queueURL == "" || f.blobURL == "" || f.dbURL == ""
	if needData {
		if err := os.MkdirAll(e.dataDir, 0o755); err != nil {
			return nil, fmt.Errorf("data directory: %w", err)
		}
	}

	var (
		nc    *nats.Conn
		qsync queue.Syncer
	)
	if f.queueURL == "" {
		release, err := lockDataDir(e.dataDir)
		if err != nil {
			return nil, err
		}
		e.closers = append(e.closers, release)
		dir := filepath.Join(e.dataDir, "nats")
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("queue directory: %w", err)
		}
		// The server fsyncs each write itself only where syncfs cannot
		// stand in for it.
		sy, err := e.syncers.Find(dir)
		if err != nil {
			return nil, err
		}
		if sy != nil {
			qsync = sy
		} else {
			log.Info("syncfs cannot be relied on here; the embedded queue fsyncs each write", "dir", dir)
		}
		ns, err := natsembed.Start(natsembed.Config{Dir: dir, SyncAlways: qsync == nil, Logger: log})
		if err != nil {
			return nil, err
		}
		e.closers = append(e.closers, ns.Shutdown)
		if nc, err = ns.Connect(nats.Name("glimpse")); err != nil {
			return nil, err
		}
		e.where["queue"] = "embedded NATS JetStream in " + filepath.Join(e.dataDir, "nats")
	} else {
		nc, err = nats.Connect(f.queueURL,
			nats.Name("glimpse"),
			nats.MaxReconnects(-1),
			nats.ReconnectWait(250*time.Millisecond),
			nats.RetryOnFailedConnect(false),
		)
		if err != nil {
			return nil, fmt.Errorf("connect to NATS at %s: %w", f.queueURL, err)
		}
		e.where["queue"] = "NATS JetStream at " + redact(f.queueURL)
	}
	e.closers = append(e.closers, nc.Close)
	if e.q, err = queue.Open(ctx, nc, queue.Config{
		Replicas: f.replicas, MaxDeliver: f.maxDeliver, AckWait: f.ackWait,
		Logger: log.With("component", "queue"), Registerer: reg, Syncer: qsync,
	}); err != nil {
		return nil, err
	}

	blobURL := f.blobURL
	if blobURL == "" {
		blobURL = "file://" + filepath.Join(e.dataDir, "blobs")
	}
	key, err := f.signingKeyFor(e.dataDir)
	if err != nil {
		return nil, err
	}
	if e.blobs, err = blobstore.OpenConfig(ctx, blobURL, blobstore.Config{SigningKey: key, PublicURL: f.blobPublic, Syncers: e.syncers}); err != nil {
		return nil, err
	}
	e.closers = append(e.closers, func() { e.blobs.Close() })
	e.where["blobs"] = redact(blobURL)

	dbURL := f.dbURL
	if dbURL == "" {
		dbURL = "sqlite://" + filepath.Join(e.dataDir, "glimpse.db")
	}
	if e.db, err = store.OpenConfig(ctx, dbURL, store.Config{Syncers: e.syncers}); err != nil {
		return nil, err
	}
	e.closers = append(e.closers, func() { e.db.Close() })
	e.where["store"] = redact(dbURL)
	return e, nil
}

// registerSyncMetrics exports how many flushes the engines' syncers made and
// how many durable writes they served; the second over the first is how
// many writes one flush carries.
func registerSyncMetrics(reg prometheus.Registerer, set *durable.Set) error {
	if reg == nil {
		return nil
	}
	sum := func(pick func(rounds, callers uint64) uint64) func() float64 {
		return func() float64 {
			var n uint64
			for _, s := range set.Syncers() {
				n += pick(s.Stats())
			}
			return float64(n)
		}
	}
	for _, c := range []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "glimpse_durable_flushes_total",
			Help: "syncfs calls that made the local engines' writes durable (each serves every write waiting).",
		}, sum(func(r, _ uint64) uint64 { return r })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "glimpse_durable_writes_total",
			Help: "Durable writes of the local engines (blob puts, database commits, queue publishes) served by those flushes.",
		}, sum(func(_, c uint64) uint64 { return c })),
	} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// redact hides a password in a URL for logs and banners.
func redact(u string) string {
	at := strings.LastIndex(u, "@")
	scheme := strings.Index(u, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return u
	}
	creds := u[scheme+3 : at]
	if user, _, ok := strings.Cut(creds, ":"); ok {
		return u[:scheme+3] + user + ":***" + u[at:]
	}
	return u
}
