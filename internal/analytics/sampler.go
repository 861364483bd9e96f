package analytics

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/glimpse-oss/glimpse/internal/queue"
)

// BacklogStore keeps backlog samples. *store.DB satisfies it.
type BacklogStore interface {
	RecordBacklog(ctx context.Context, t time.Time, backlog int64, workers int) error
	PruneBacklog(ctx context.Context, before time.Time) error
}

// DepthSource reports the queue's depth. *queue.Queue satisfies it.
type DepthSource interface {
	Depth(ctx context.Context) (queue.Depth, error)
}

// SamplerConfig tunes a Sampler. Zero fields mean their defaults.
type SamplerConfig struct {
	// Every is the sampling interval (default 5s); samples are stamped with
	// the time rounded down to it.
	Every time.Duration
	// Keep is how long samples are kept (default 30 days).
	Keep time.Duration
	// Workers reports the workers running; nil records 0.
	Workers func() int
	// Logger receives the sampler's logs; nil discards them.
	Logger *slog.Logger
}

// Sampler records the queue's backlog and the worker count every few
// seconds, for /v1/stats/backlog.
type Sampler struct {
	cfg   SamplerConfig
	db    BacklogStore
	depth DepthSource
	log   *slog.Logger
}

// NewSampler returns a sampler of depth into db.
func NewSampler(cfg SamplerConfig, db BacklogStore, depth DepthSource) (*Sampler, error) {
	if db == nil || depth == nil {
		return nil, errors.New("analytics: sampler needs a store and a depth source")
	}
	if cfg.Every <= 0 {
		cfg.Every = 5 * time.Second
	}
	if cfg.Keep <= 0 {
		cfg.Keep = 30 * 24 * time.Hour
	}
	if cfg.Workers == nil {
		cfg.Workers = func() int { return 0 }
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Sampler{cfg: cfg, db: db, depth: depth, log: log}, nil
}

// Run samples until ctx ends, pruning old samples once an hour.
func (s *Sampler) Run(ctx context.Context) error {
	tick := time.NewTicker(s.cfg.Every)
	defer tick.Stop()
	var pruned time.Time
	for {
		if err := s.Sample(ctx, time.Now()); err != nil && ctx.Err() == nil {
			s.log.Warn("backlog sample failed", "err", err)
		}
		if time.Since(pruned) > time.Hour {
			if err := s.db.PruneBacklog(ctx, time.Now().Add(-s.cfg.Keep)); err != nil && ctx.Err() == nil {
				s.log.Warn("prune backlog samples", "err", err)
			}
			pruned = time.Now()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Sample records one sample stamped at now rounded down to the interval.
func (s *Sampler) Sample(ctx context.Context, now time.Time) error {
	d, err := s.depth.Depth(ctx)
	if err != nil {
		return err
	}
	return s.db.RecordBacklog(ctx, now.UTC().Truncate(s.cfg.Every), int64(d.Backlog()), s.cfg.Workers())
}
