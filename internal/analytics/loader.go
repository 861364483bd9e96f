package analytics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/glimpse-oss/glimpse/internal/job"
	"github.com/glimpse-oss/glimpse/internal/queue"
	"github.com/glimpse-oss/glimpse/internal/store"
)

// Store is the part of the store the loader and backfill use. *store.DB
// satisfies it.
type Store interface {
	// UpsertFacts writes rows, each replacing its image's unless that one
	// finished later.
	UpsertFacts(ctx context.Context, facts []store.Fact) error
	// GetImageByID returns an image of any tenant, or store.ErrNotFound.
	GetImageByID(ctx context.Context, id string) (*job.Image, error)
}

// Outcomes is where the loader reads outcomes from. *queue.OutcomeConsumer
// satisfies it.
type Outcomes interface {
	Fetch(ctx context.Context, n int, wait time.Duration) ([]*queue.OutcomeDelivery, error)
}

// LoaderConfig tunes a Loader. Zero fields mean their defaults.
type LoaderConfig struct {
	// Batch is the most outcomes written in one transaction (default 256).
	Batch int
	// Wait is how long one fetch waits for outcomes (default 2s).
	Wait time.Duration
	// Linger is how long the loader lets outcomes gather after a batch
	// that was not full, so that a steady trickle is written in a few
	// transactions instead of one per outcome (default 1s; negative for
	// none). The analytics tables trail the results by at most about this.
	Linger time.Duration
	// RetryAfter is how long a failing store or queue is left alone before
	// trying again (default 2s).
	RetryAfter time.Duration
	// Logger receives the loader's logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives the loader's metrics; none are registered when nil.
	Registerer prometheus.Registerer
}

// Loader keeps the analytics rows up to date from the results stream.
type Loader struct {
	cfg      LoaderConfig
	db       Store
	outcomes Outcomes
	log      *slog.Logger
	loaded   *prometheus.CounterVec
}

// NewLoader returns a loader that reads outcomes and writes rows to db.
func NewLoader(cfg LoaderConfig, db Store, outcomes Outcomes) (*Loader, error) {
	if db == nil || outcomes == nil {
		return nil, errors.New("analytics: loader needs a store and an outcome source")
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 256
	}
	if cfg.Wait <= 0 {
		cfg.Wait = 2 * time.Second
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = 2 * time.Second
	}
	if cfg.Linger == 0 {
		cfg.Linger = time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Loader{cfg: cfg, db: db, outcomes: outcomes, log: log,
		loaded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "glimpse_analytics_outcomes_total",
			Help: "Outcomes the analytics loader handled, by result (loaded, skipped: image deleted, retried).",
		}, []string{"result"}),
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(l.loaded); err != nil {
			return nil, fmt.Errorf("analytics: metrics: %w", err)
		}
	}
	return l, nil
}

// Run loads outcomes until ctx ends. Errors of the queue or the store are
// logged and retried: analytics must never stop the API.
func (l *Loader) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		n, err := l.Step(ctx)
		if err != nil && ctx.Err() == nil {
			l.log.Warn("analytics load failed; retrying", "err", err, "after", l.cfg.RetryAfter)
			sleep(ctx, l.cfg.RetryAfter)
			continue
		}
		if n > 0 {
			l.log.Debug("analytics rows loaded", "n", n)
		}
		if n > 0 && n < l.cfg.Batch && l.cfg.Linger > 0 {
			// Every write is a durable commit: under a trickle of
			// outcomes, wait for more instead of committing each alone.
			sleep(ctx, l.cfg.Linger)
		}
	}
	return nil
}

// Step fetches one batch of outcomes, writes their rows in one transaction
// and acknowledges them, returning how many rows it wrote. Outcomes of
// images that no longer exist are acknowledged without a row. When the
// write fails nothing is acknowledged: the batch comes again.
func (l *Loader) Step(ctx context.Context) (int, error) {
	ds, err := l.outcomes.Fetch(ctx, l.cfg.Batch, l.cfg.Wait)
	if err != nil {
		return 0, err
	}
	facts := make([]store.Fact, 0, len(ds))
	var ok, skipped []*queue.OutcomeDelivery
	for _, d := range ds {
		o := d.Outcome
		if !o.Status.Terminal() {
			skipped = append(skipped, d)
			continue
		}
		img, err := l.db.GetImageByID(ctx, o.ImageID)
		if errors.Is(err, store.ErrNotFound) {
			skipped = append(skipped, d) // deleted since
			continue
		}
		if err != nil {
			l.nakAll(ds)
			return 0, err
		}
		if img.Tenant != o.Tenant && o.Tenant != "" {
			l.log.Warn("outcome tenant differs from the image's; using the image's", "image_id", o.ImageID)
		}
		res := o.Result
		if res == nil && o.Status == job.StatusDone {
			res = img.Result
		}
		facts = append(facts, NewFact(img, o.Status, o.Error, res, o.FinishedAt))
		ok = append(ok, d)
	}
	if err := l.db.UpsertFacts(ctx, facts); err != nil {
		l.nakAll(ds)
		return 0, err
	}
	for _, d := range append(ok, skipped...) {
		if err := d.Ack(); err != nil {
			l.log.Warn("ack outcome", "image_id", d.Outcome.ImageID, "err", err)
		}
	}
	l.loaded.WithLabelValues("loaded").Add(float64(len(ok)))
	l.loaded.WithLabelValues("skipped").Add(float64(len(skipped)))
	return len(facts), nil
}

func (l *Loader) nakAll(ds []*queue.OutcomeDelivery) {
	l.loaded.WithLabelValues("retried").Add(float64(len(ds)))
	for _, d := range ds {
		_ = d.Nak(l.cfg.RetryAfter)
	}
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
