package cli

import (
	"context"
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
}

func (e *engineFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&e.data, "data", "./data", "directory for the embedded queue, blobs and database")
	fl.StringVar(&e.queueURL, "queue", "", "NATS JetStream servers, e.g. nats://n1:4222,nats://n2:4222 (default: embedded under --data)")
	fl.StringVar(&e.blobURL, "blob", "", "blob store URL: file:///dir, s3://bucket?endpoint=…&region=…, gs://…, azblob://… (default: files under --data)")
	fl.StringVar(&e.dbURL, "db", "", "database URL: sqlite:///path.db or postgres://user@host/db (default: SQLite under --data)")
	fl.IntVar(&e.replicas, "replicas", 1, "JetStream stream replicas (3 on a cluster)")
	fl.IntVar(&e.maxDeliver, "max-deliver", 5, "attempts per job before it is dead-lettered and marked failed")
	fl.DurationVar(&e.ackWait, "ack-wait", 30*time.Second, "how long a job may go without a worker heartbeat before it is redelivered")
}

// engines are the open queue, blob store and database of one process.
type engines struct {
	q       *queue.Queue
	blobs   *blobstore.Store
	db      *store.DB
	dataDir string
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
	e := &engines{where: map[string]string{}}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	if e.dataDir, err = filepath.Abs(f.data); err != nil {
		return nil, err
	}
	needData := f.queueURL == "" || f.blobURL == "" || f.dbURL == ""
	if needData {
		if err := os.MkdirAll(e.dataDir, 0o755); err != nil {
			return nil, fmt.Errorf("data directory: %w", err)
		}
	}

	var nc *nats.Conn
	if f.queueURL == "" {
		ns, err := natsembed.Start(natsembed.Config{Dir: filepath.Join(e.dataDir, "nats"), SyncAlways: true, Logger: log})
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
		Logger: log.With("component", "queue"), Registerer: reg,
	}); err != nil {
		return nil, err
	}

	blobURL := f.blobURL
	if blobURL == "" {
		blobURL = "file://" + filepath.Join(e.dataDir, "blobs")
	}
	if e.blobs, err = blobstore.Open(ctx, blobURL); err != nil {
		return nil, err
	}
	e.closers = append(e.closers, func() { e.blobs.Close() })
	e.where["blobs"] = redact(blobURL)

	dbURL := f.dbURL
	if dbURL == "" {
		dbURL = "sqlite://" + filepath.Join(e.dataDir, "glimpse.db")
	}
	if e.db, err = store.Open(ctx, dbURL); err != nil {
		return nil, err
	}
	e.closers = append(e.closers, func() { e.db.Close() })
	e.where["store"] = redact(dbURL)
	return e, nil
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
