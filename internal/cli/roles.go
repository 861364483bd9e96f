package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/pflag"
	"golang.org/x/sync/errgroup"

	"github.com/glimpse-oss/glimpse/internal/analyzer/classify"
	"github.com/glimpse-oss/glimpse/internal/analyzer/faces"
	"github.com/glimpse-oss/glimpse/internal/analyzer/standard"
	"github.com/glimpse-oss/glimpse/internal/blobstore"
	"github.com/glimpse-oss/glimpse/internal/imagedata"
	"github.com/glimpse-oss/glimpse/internal/job"
	"github.com/glimpse-oss/glimpse/internal/models"
	"github.com/glimpse-oss/glimpse/internal/queue"
	"github.com/glimpse-oss/glimpse/internal/store"
	"github.com/glimpse-oss/glimpse/internal/web"
	"github.com/glimpse-oss/glimpse/internal/worker"
)

// A role is one long-running part of Glimpse: serve runs the api and worker
// roles in one process, `glimpse api` and `glimpse worker` run one each.
// Each start function sets its role up and returns the actor that runs it
// until ctx ends, then shuts it down gracefully.
type actor func(ctx context.Context) error

// runActors runs actors until ctx ends or one fails, and reports a clean
// stop as nil.
func runActors(ctx context.Context, log *slog.Logger, actors ...actor) error {
	grp, gctx := errgroup.WithContext(ctx)
	for _, a := range actors {
		grp.Go(func() error { return a(gctx) })
	}
	err := grp.Wait()
	if ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled)) {
		log.Info("stopped cleanly")
		return nil
	}
	return err
}

// newRegistry is the process's Prometheus registry (never the global one).
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// limitFlags bound what is accepted and decoded.
type limitFlags struct {
	maxBytes      byteSize
	maxMegapixels float64
	maxFrames     int
}

func (f *limitFlags) register(fl *pflag.FlagSet) {
	def := imagedata.DefaultLimits()
	f.maxBytes = byteSize(def.MaxBytes)
	fl.Var(&f.maxBytes, "max-bytes", "largest upload accepted per image")
	fl.Float64Var(&f.maxMegapixels, "max-megapixels", float64(def.MaxPixels)/1e6, "largest image accepted, in megapixels (checked from the header before decoding)")
	fl.IntVar(&f.maxFrames, "max-frames", def.MaxFrames, "most frames an animated GIF may hold (only the first is decoded; 0 means no limit)")
}

func (f *limitFlags) limits() imagedata.Limits {
	def := imagedata.DefaultLimits()
	return imagedata.Limits{
		MaxBytes:  int64(f.maxBytes),
		MaxPixels: int64(f.maxMegapixels * 1e6),
		MaxFrames: f.maxFrames,
		// The API sets BodyTimeout from --body-timeout.
		BodyMinRate: def.BodyMinRate,
	}
}

// Per-tenant limits are off unless set: an open server on loopback is one
// person's machine (often driven by load tests), and an operator exposing
// one picks limits for its tenants — e.g. --rate-limit 100/s --rate-burst 200
// --max-concurrent-uploads 16, enough for the web UI's page of thumbnails.
const (
	defaultRateLimit  = 0
	defaultRateBurst  = 200
	defaultMaxUploads = 0
)

// apiFlags configure the web tier.
type apiFlags struct {
	addr        string
	requireKeys bool
	open        bool
	reconcile   time.Duration
	rate        rateFlag
	rateBurst   int
	maxUploads  int
	corsOrigins []string
	tlsMode     string
	tlsCert     string
	tlsKey      string
	bodyTimeout time.Duration
}

func (f *apiFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.addr, "addr", "127.0.0.1:8080", "address to listen on (host:port; port 0 picks a free one)")
	fl.BoolVar(&f.requireKeys, "require-keys", false, "require an API key on every request, even on loopback")
	fl.BoolVar(&f.open, "open", false, "run without API keys even on a non-loopback address")
	fl.DurationVar(&f.reconcile, "reconcile-after", 2*time.Minute, "re-publish jobs still queued in the store but missing from the queue after this long")
	f.rate = defaultRateLimit
	fl.Var(&f.rate, "rate-limit", "requests per tenant (an API key's tenant, or the open default tenant) to /v1, e.g. 20/s or 600/m; more get 429 with Retry-After (0: no limit)")
	fl.IntVar(&f.rateBurst, "rate-burst", defaultRateBurst, "requests a tenant may send at once above --rate-limit")
	fl.IntVar(&f.maxUploads, "max-concurrent-uploads", defaultMaxUploads, "uploads per tenant in flight at once; more get 429 with Retry-After: 1 (0: no cap)")
	fl.StringSliceVar(&f.corsOrigins, "cors-origins", nil, "origins whose pages may call /v1 from a browser, comma-separated: https://a.example,https://b.example (default none)")
	f.registerTLS(fl)
	fl.DurationVar(&f.bodyTimeout, "body-timeout", imagedata.DefaultLimits().BodyTimeout,
		"cut off an upload body that takes longer than this, plus 1s per 16 KiB received (0 means no limit)")
}

// keysRequired says whether the API demands keys on this address.
func (f *apiFlags) keysRequired() (bool, error) {
	if f.open && f.requireKeys {
		return false, errors.New("--open and --require-keys contradict each other")
	}
	return f.requireKeys || (!f.open && !isLoopback(f.addr)), nil
}

// startAPI builds the HTTP API over eng, listens, and returns the address it
// listens on and the actor that serves uploads, handles dead letters and
// reconciles stranded jobs.
func startAPI(ctx context.Context, log *slog.Logger, reg *prometheus.Registry, eng *engines, f *apiFlags, limits imagedata.Limits, ready map[string]func(context.Context) error) (*endpoint, actor, error) {
	requireKeys, err := f.keysRequired()
	if err != nil {
		return nil, nil, err
	}
	checks := map[string]func(context.Context) error{
		"queue": eng.q.Ping,
		"store": eng.db.Ping,
		"blobs": eng.blobs.Ping,
	}
	for k, v := range ready {
		checks[k] = v
	}
	limits.BodyTimeout = f.bodyTimeout
	tlsCfg, tlsNote, err := f.setupTLS(eng.dataDir)
	if err != nil {
		return nil, nil, err
	}
	if f.rateBurst < 0 || f.maxUploads < 0 {
		return nil, nil, errors.New("--rate-burst and --max-concurrent-uploads must be 0 or more")
	}
	srv, err := web.New(web.Config{
		Limits:        limits,
		RequireKeys:   requireKeys,
		DefaultTenant: "default",
		Version:       version,
		RateLimit:     web.RateLimit{PerSecond: float64(f.rate), Burst: max(f.rateBurst, 1), MaxUploads: f.maxUploads},
		CORSOrigins:   f.corsOrigins,
	}, web.Deps{
		Store: eng.db, Blobs: eng.blobs, Queue: eng.q,
		Signer:         eng.blobs, // pre-signed uploads (POST /v1/uploads)
		IsBlobNotFound: isBlobNotFound,
		Ready:          checks,
		Registerer:     reg, Gatherer: reg,
		Logger: log.With("component", "web"),
	})
	if err != nil {
		return nil, nil, err
	}
	// Outcomes wake ?wait= requests and feed the event streams, as do the
	// workers' announcements that they started on an image.
	stopOutcomes, err := eng.q.SubscribeOutcomes(srv.NotifyOutcome)
	if err != nil {
		return nil, nil, err
	}
	stopProgress, err := eng.q.SubscribeProgress(srv.NotifyProgress)
	if err != nil {
		stopOutcomes()
		return nil, nil, err
	}
	stopEvents := func() { stopOutcomes(); stopProgress() }
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		stopEvents()
		return nil, nil, fmt.Errorf("listen on %s: %w", f.addr, err)
	}
	httpSrv := &http.Server{
		TLSConfig:         tlsCfg,
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	// Event streams and waiting uploads would hold Shutdown up: they answer
	// at once instead.
	httpSrv.RegisterOnShutdown(srv.Drain)
	run := func(ctx context.Context) error {
		defer stopEvents()
		grp, gctx := errgroup.WithContext(ctx)
		grp.Go(func() error {
			serve := httpSrv.Serve
			if tlsCfg != nil {
				serve = func(ln net.Listener) error { return httpSrv.ServeTLS(ln, "", "") }
			}
			if err := serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
		grp.Go(func() error {
			return eng.q.RunDeadLetters(gctx, func(ctx context.Context, j job.Job, reason string) error {
				return failDeadLetter(ctx, eng.db, eng.q, j, reason)
			})
		})
		grp.Go(func() error {
			runReconciler(gctx, log.With("component", "reconciler"), eng.db, eng.q, f.reconcile)
			return nil
		})
		grp.Go(func() error { return runAnalytics(gctx, log, reg, eng) })
		grp.Go(func() error {
			sweepUploads(gctx, log.With("component", "uploads"), srv)
			return nil
		})
		grp.Go(func() error {
			<-gctx.Done()
			log.Info("shutting down the API: no new uploads")
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return httpSrv.Shutdown(sctx)
		})
		return grp.Wait()
	}
	ep := &endpoint{addr: ln.Addr(), url: "http://" + ln.Addr().String(), tls: tlsNote}
	if tlsCfg != nil {
		ep.url = "https://" + ln.Addr().String()
	}
	return ep, run, nil
}

// endpoint is where the API listens, for the banner.
type endpoint struct {
	addr net.Addr
	url  string // http://host:port, or https://…
	tls  string // lines about the certificate, or "" without TLS
}

// workerFlags configure the worker pool.
type workerFlags struct {
	models        string
	ortLib        string
	workers       int
	drainTimeout  time.Duration
	eventFeatures string
	facesMinSize  float64
}

func (f *workerFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.models, "models", "", "directory holding the model and labels (default: search GLIMPSE_MODELS, ./models, ../shared/models)")
	fl.StringVar(&f.ortLib, "ort-lib", "", "path to libonnxruntime.so.1 (default: search .deps/onnxruntime, next to the binary)")
	fl.IntVar(&f.workers, "workers", runtime.NumCPU(), "worker goroutines, each with its own inference session")
	fl.DurationVar(&f.drainTimeout, "drain-timeout", 30*time.Second, "on shutdown, how long workers may finish their jobs before releasing them")
	fl.StringVar(&f.eventFeatures, "event-features", "labels", "features computed for images that arrive by a bucket's storage event (comma list, or all)")
	fl.Float64Var(&f.facesMinSize, "faces-min-size", faces.DefaultMinFace,
		"smallest face searched for, as a fraction of the photo's shorter side; below about 0.04 faces searches a larger copy, "+
			"at about (0.05/x)² the cost (0.02: faces of 40 px in a 2000 px tall group photo, at about 6× the cost)")
}

// startWorkers builds the worker pool over eng and returns it and the actor
// that drains it when ctx ends. The pool starts with no workers; the caller
// sizes it.
func startWorkers(log *slog.Logger, reg prometheus.Registerer, eng *engines, model *models.Model, f *workerFlags, limits imagedata.Limits, ackWait time.Duration) (*worker.Pool, actor, error) {
	if f.workers < 0 {
		return nil, nil, fmt.Errorf("--workers %d: want 0 or more", f.workers)
	}
	eventFeatures, err := job.ParseFeatures(f.eventFeatures)
	if err != nil {
		return nil, nil, fmt.Errorf("--event-features: %w", err)
	}
	if err := (faces.Config{MinFace: f.facesMinSize}).Validate(); err != nil || f.facesMinSize == 0 {
		return nil, nil, fmt.Errorf("--faces-min-size %v: want a fraction of the shorter side in (0, 1], such as 0.05", f.facesMinSize)
	}
	wcfg := worker.NewDefaultConfig()
	wcfg.Limits = limits
	wcfg.EventFeatures = eventFeatures
	wcfg.Heartbeat = min(wcfg.Heartbeat, ackWait/3)
	pool, err := worker.New(wcfg, worker.Deps{
		Queue: eng.q, Store: eng.db, Blobs: eng.blobs,
		NewPipeline: func() (worker.Pipeline, error) {
			return standard.New(model, eng.blobs, standard.Options{FacesMinSize: f.facesMinSize})
		},
		IsBlobNotFound: isBlobNotFound,
		Logger:         log.With("component", "worker"),
		Registerer:     reg,
	})
	if err != nil {
		return nil, nil, err
	}
	run := func(ctx context.Context) error {
		<-ctx.Done()
		log.Info("draining workers: they finish what they hold", "drain_timeout", f.drainTimeout)
		dctx, cancel := context.WithTimeout(context.Background(), f.drainTimeout)
		defer cancel()
		if err := pool.Stop(dctx); err != nil {
			log.Warn("drain timed out; unfinished jobs were released for redelivery")
		}
		return nil
	}
	return pool, run, nil
}

// serveMetrics is the small HTTP server a worker process offers for
// probes and scraping: /healthz and /metrics.
func serveMetrics(log *slog.Logger, addr string, reg *prometheus.Registry) (net.Addr, actor, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	return ln.Addr(), func(ctx context.Context) error {
		go func() {
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srv.Shutdown(sctx)
		}()
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}, nil
}

// loadModel finds and verifies the model and loads ONNX Runtime.
func loadModel(dir, ortLib string) (*models.Model, error) {
	model, err := models.Locate(dir)
	if err != nil {
		return nil, err
	}
	lib, err := models.FindRuntime(ortLib)
	if err != nil {
		return nil, err
	}
	if err := classify.InitRuntime(lib); err != nil {
		return nil, err
	}
	return model, nil
}

func isBlobNotFound(err error) bool { return errors.Is(err, blobstore.ErrNotFound) }

// failDeadLetter marks an image whose job exhausted its deliveries as failed
// (unless a late worker finished it, or it was asked for other features
// since and another job is at work on them) and tells listeners.
func failDeadLetter(ctx context.Context, db *store.DB, q *queue.Queue, j job.Job, reason string) error {
	ok, err := db.MarkFailed(ctx, j.ImageID, 0, j.Features, reason)
	if err != nil || !ok {
		return err
	}
	return q.PublishOutcome(ctx, job.Outcome{ImageID: j.ImageID, Tenant: j.Tenant, Status: job.StatusFailed, Error: reason, FinishedAt: time.Now().UTC()})
}

// rateFlag is a flag value for a rate such as 20/s, 600/m or 20 (per
// second); it holds requests per second.
type rateFlag float64

func (r *rateFlag) String() string { return strconv.FormatFloat(float64(*r), 'f', -1, 64) + "/s" }
func (r *rateFlag) Type() string   { return "rate" }
func (r *rateFlag) Set(s string) error {
	num, unit, _ := strings.Cut(strings.ToLower(strings.TrimSpace(s)), "/")
	per := map[string]float64{"": 1, "s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}[unit]
	n, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || per == 0 || n < 0 || math.IsInf(n, 0) || math.IsNaN(n) {
		return fmt.Errorf("rate %q: want a number of requests per s, m or h, such as 20/s or 600/m (0: no limit)", s)
	}
	*r = rateFlag(n / per)
	return nil
}

// isLoopback reports whether addr listens only on a loopback interface.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Pre-signed uploads never completed are forgotten uploadGrace after their
// URL expired, looked for every uploadSweepEvery.
const (
	uploadGrace      = time.Hour
	uploadSweepEvery = 10 * time.Minute
)

// sweepUploads runs srv.SweepUploads until ctx ends.
func sweepUploads(ctx context.Context, log *slog.Logger, srv *web.Server) {
	every(ctx, uploadSweepEvery, func() {
		n, err := srv.SweepUploads(ctx, uploadGrace)
		if err != nil && ctx.Err() == nil {
			log.Warn("forgetting expired uploads failed", "err", err)
		}
		if n > 0 {
			log.Info("forgot expired uploads that never completed", "count", n)
		}
	})
}
