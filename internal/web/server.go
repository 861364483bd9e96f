// Package web is Glimpse's HTTP API v1: image upload, results, content and
// deletion under /v1, plus /healthz, /readyz, /metrics, /openapi.json and
// /docs. Handlers are registered with huma on a net/http ServeMux, so the
// OpenAPI 3.1 document is generated from the code, and every error is an
// RFC 9457 application/problem+json document.
//
// The package defines the small interfaces it consumes (Store, Blobs, Queue);
// the caller wires the concrete store, blob store and queue in through Deps.
package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/glimpse-oss/glimpse/internal/imagedata"
	"github.com/glimpse-oss/glimpse/internal/job"
	"github.com/glimpse-oss/glimpse/internal/store"
	"github.com/glimpse-oss/glimpse/internal/web/ui"
)

// Store is the part of the metadata store the API uses. *store.DB satisfies it.
type Store interface {
	// CreateImage inserts img unless an image with its id exists. It returns
	// the stored row and whether this call created it.
	CreateImage(ctx context.Context, img *job.Image) (stored *job.Image, created bool, err error)
	// GetImage returns one image of tenant, or store.ErrNotFound.
	GetImage(ctx context.Context, tenant, id string) (*job.Image, error)
	// ListImages returns a page of images, newest first, or store.ErrBadCursor.
	ListImages(ctx context.Context, opt store.ListOptions) (store.Page, error)
	// DeleteImage removes one image row of tenant, or returns store.ErrNotFound.
	DeleteImage(ctx context.Context, tenant, id string) error
	// SimilarImages lists near-duplicates of an image by perceptual hash.
	SimilarImages(ctx context.Context, tenant, id string, maxDistance, limit int) ([]store.Similar, error)
	// Reopen takes a finished image whose features are still from back to
	// queued with the features to; ok is false when it is not finished or
	// its features changed (see store.DB.Reopen).
	Reopen(ctx context.Context, tenant, id string, from, to []job.Feature) (img *job.Image, ok bool, err error)
	// Authenticate maps an API key secret to its key record, or returns
	// store.ErrUnauthorized.
	Authenticate(ctx context.Context, secret string) (store.Key, error)
}

// Blobs is the part of the blob store the API uses. *blobstore.Store satisfies it.
type Blobs interface {
	// Put writes b under key.
	Put(ctx context.Context, key string, b []byte, contentType string) error
	// Get reads the blob under key; a missing blob is an error for which
	// Deps.IsBlobNotFound reports true.
	Get(ctx context.Context, key string) ([]byte, error)
	// Delete removes the blob under key.
	Delete(ctx context.Context, key string) error
}

// Queue is the part of the job queue the API uses. *queue.Queue satisfies it.
type Queue interface {
	// Publish durably enqueues j. Publishes are deduplicated by image id.
	Publish(ctx context.Context, j job.Job) error
}

// Config tunes the API. The zero value of every field means its default.
type Config struct {
	// Limits bound each uploaded file; default imagedata.DefaultLimits().
	Limits imagedata.Limits
	// MaxFiles is the most file parts one multipart request may carry; default 32.
	MaxFiles int
	// MaxWait caps the ?wait= of an upload; default 60s.
	MaxWait time.Duration
	// RequireKeys makes an API key mandatory on /v1. When false, a request
	// without a key acts as DefaultTenant; a key, if sent, is still checked.
	RequireKeys bool
	// DefaultTenant is the tenant of keyless requests; default "default".
	DefaultTenant string
	// Version is reported in the OpenAPI document; default "dev".
	Version string
	// UploadURLTTL is how long a pre-signed upload URL stays valid;
	// default DefaultUploadURLTTL, at most an hour.
	UploadURLTTL time.Duration
	// PublicURL is the scheme and host clients reach the server at, used
	// in pre-signed upload URLs; default: the Host the request was sent to.
	PublicURL string
	// RateLimit bounds each tenant's requests and uploads in flight; the
	// zero value sets no limit.
	RateLimit RateLimit
	// CORSOrigins are the origins (scheme://host[:port]) whose pages may
	// call /v1 from a browser; none by default.
	CORSOrigins []string
}

// Default values of Config fields.
const (
	DefaultMaxFiles      = 32
	DefaultMaxWait       = 60 * time.Second
	DefaultTenant        = "default"
	defaultVersion       = "dev"
	readyTimeout         = 2 * time.Second
	waitPollInterval     = time.Second
	publishRetryAfterSec = "2"
)

// Deps are the components the API talks to.
type Deps struct {
	Store Store
	Blobs Blobs
	Queue Queue
	// IsBlobNotFound reports whether an error from Blobs means the blob does
	// not exist (e.g. errors.Is(err, blobstore.ErrNotFound)). Required.
	IsBlobNotFound func(error) bool
	// Ready holds the readiness checks run by /readyz, by name ("queue",
	// "store", "blobs", "model"). Each gets a 2s timeout.
	Ready map[string]func(ctx context.Context) error
	// Signer signs pre-signed upload URLs (POST /v1/uploads) and checks the
	// ones it signed; nil disables pre-signed uploads.
	Signer Signer
	// Registerer receives the API's metrics and Gatherer serves /metrics.
	// When both are nil a private registry is used for both.
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
	// Logger receives access logs and errors; nil discards them.
	Logger *slog.Logger
}

// Server is the HTTP API. Create it with New and serve Handler.
type Server struct {
	cfg     Config
	deps    Deps
	log     *slog.Logger
	mux     *http.ServeMux
	api     huma.API
	handler http.Handler
	metrics *metrics
	waiters waiters
	events  *broker
	// now is the clock for EnqueuedAt; replaced in tests only.
	now func() time.Time
}

// New validates cfg and deps, fills in defaults and builds the routes.
func New(cfg Config, deps Deps) (*Server, error) {
	if deps.Store == nil || deps.Blobs == nil || deps.Queue == nil {
		return nil, errors.New("web: Deps.Store, Deps.Blobs and Deps.Queue are required")
	}
	if deps.IsBlobNotFound == nil {
		return nil, errors.New("web: Deps.IsBlobNotFound is required")
	}
	if cfg.Limits.MaxBytes == 0 && cfg.Limits.MaxPixels == 0 {
		cfg.Limits = imagedata.DefaultLimits()
	}
	if cfg.Limits.MaxBytes <= 0 || cfg.Limits.MaxPixels <= 0 {
		return nil, errors.New("web: Config.Limits must have positive MaxBytes and MaxPixels")
	}
	if cfg.MaxFiles == 0 {
		cfg.MaxFiles = DefaultMaxFiles
	}
	if cfg.MaxFiles < 0 {
		return nil, errors.New("web: Config.MaxFiles must be positive")
	}
	if cfg.MaxWait == 0 {
		cfg.MaxWait = DefaultMaxWait
	}
	if cfg.MaxWait < 0 {
		return nil, errors.New("web: Config.MaxWait must be positive")
	}
	if cfg.DefaultTenant == "" {
		cfg.DefaultTenant = DefaultTenant
	}
	if !job.ValidTenant(cfg.DefaultTenant) {
		return nil, fmt.Errorf("web: default tenant %q: a tenant name is %s", cfg.DefaultTenant, job.TenantRule)
	}
	if cfg.Version == "" {
		cfg.Version = defaultVersion
	}
	if cfg.UploadURLTTL == 0 {
		cfg.UploadURLTTL = DefaultUploadURLTTL
	}
	if cfg.UploadURLTTL < 0 || cfg.UploadURLTTL > maxUploadURLTTL {
		return nil, errors.New("web: Config.UploadURLTTL must be positive and at most an hour")
	}
	switch {
	case deps.Registerer == nil && deps.Gatherer == nil:
		reg := prometheus.NewRegistry()
		deps.Registerer, deps.Gatherer = reg, reg
	case deps.Gatherer == nil:
		g, ok := deps.Registerer.(prometheus.Gatherer)
		if !ok {
			return nil, errors.New("web: Deps.Gatherer is required when Deps.Registerer is not a Gatherer")
		}
		deps.Gatherer = g
	case deps.Registerer == nil:
		return nil, errors.New("web: Deps.Registerer is required when Deps.Gatherer is set")
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(deps.Registerer)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:     cfg,
		deps:    deps,
		log:     log,
		mux:     http.NewServeMux(),
		metrics: m,
		waiters: waiters{m: map[string]map[*waiter]struct{}{}, stopped: make(chan struct{})},
		events:  newBroker(),
		now:     time.Now,
	}
	// Images an upload creates are announced on GET /v1/events.
	s.deps.Store = announcingStore{Store: deps.Store, events: s.events}
	s.api = humago.New(s.mux, s.humaConfig())
	s.registerRoutes()
	throttled, err := s.withThrottle(s.mux)
	if err != nil {
		return nil, err
	}
	guarded, err := withCORS(cfg.CORSOrigins, throttled)
	if err != nil {
		return nil, err
	}
	s.handler = s.middleware(guarded)
	return s, nil
}

// Handler returns the http.Handler serving every route of the API.
func (s *Server) Handler() http.Handler { return s.handler }

// NotifyOutcome tells the server that an image reached a terminal status
// (done or failed), waking uploads that wait for it with ?wait= and
// announcing it on the tenant's event streams. It never blocks and is safe
// for concurrent use.
func (s *Server) NotifyOutcome(o job.Outcome) {
	s.waiters.notify(o.ImageID)
	s.events.publish(o.Tenant, event{id: o.ImageID})
}

// NotifyProgress tells the server that a worker started on an image
// (queue.SubscribeProgress feeds it): the tenant's event streams announce
// the image, now processing. Waiters are not woken: nothing is finished.
func (s *Server) NotifyProgress(o job.Outcome) {
	s.events.publish(o.Tenant, event{id: o.ImageID})
}

// humaConfig is huma's default configuration without the $schema link
// transformer (it would add a "$schema" field to every response body).
func (s *Server) humaConfig() huma.Config {
	c := huma.DefaultConfig("Glimpse", s.cfg.Version)
	c.CreateHooks = nil
	c.OpenAPIPath = "/openapi"
	// /docs is our own page (ui), not huma's: that one loads its renderer
	// from a CDN and is blank on a machine without internet.
	c.DocsPath = ""
	c.Info.Description = "Glimpse recognises what is in images. Upload an image, " +
		"then read its labels when the job is done (or ask to wait for them)."
	c.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		"bearer": {Type: "http", Scheme: "bearer", Description: "API key as a bearer token"},
		"apiKey": {Type: "apiKey", In: "header", Name: "X-API-Key", Description: "API key in a header"},
	}
	return c
}

// security is the OpenAPI security requirement of /v1 operations.
func (s *Server) security() []map[string][]string {
	sec := []map[string][]string{{"bearer": {}}, {"apiKey": {}}}
	if !s.cfg.RequireKeys {
		sec = append(sec, map[string][]string{})
	}
	return sec
}

// registerRoutes adds every route to s.mux.
func (s *Server) registerRoutes() {
	s.registerImages()
	s.registerStats()
	s.registerEvents()
	s.registerUploads()
	s.registerHealth()
	s.documentThrottling()
	s.documentExamples()
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.deps.Gatherer, promhttp.HandlerOpts{}))
	s.registerUI()
	s.mux.HandleFunc("/", s.notFound)
}

// documentThrottling adds the 429 answer to every /v1 operation of the
// OpenAPI document: the tenant rate limit (--rate-limit) and the cap on
// concurrent uploads refuse requests before they reach a handler, so no
// handler declares it.
func (s *Server) documentThrottling() {
	for path, item := range s.api.OpenAPI().Paths {
		if !strings.HasPrefix(path, "/v1/") {
			continue
		}
		for _, op := range []*huma.Operation{item.Get, item.Post, item.Put, item.Patch, item.Delete} {
			if op == nil || op.Responses["429"] != nil {
				continue
			}
			var problem map[string]*huma.MediaType
			for code, r := range op.Responses {
				if len(code) == 3 && code[0] == '4' && r.Content != nil {
					problem = r.Content
					break
				}
			}
			if problem == nil {
				continue
			}
			op.Responses["429"] = &huma.Response{
				Description: "Too Many Requests: the tenant's rate limit or the server's cap on concurrent uploads was reached. " +
					"Retry after the Retry-After header's seconds; RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset describe the budget.",
				Headers: map[string]*huma.Param{
					"Retry-After": {Description: "seconds to wait before retrying", Schema: &huma.Schema{Type: "integer"}},
				},
				Content: problem,
			}
		}
	}
}

// registerUI serves the web interface at / and its assets under /ui/.
func (s *Server) registerUI() {
	// A page uploading large files straight to S3 connects there.
	var origin string
	if o, ok := s.deps.Signer.(interface{ SignedOrigin() string }); ok {
		origin = o.SignedOrigin()
	}
	h := ui.Handler(origin)
	s.mux.Handle("GET /{$}", h)
	s.mux.Handle("GET /docs", h)
	s.mux.Handle("GET /ui/", h)
}

// waiters tracks uploads waiting for images to finish.
type waiters struct {
	mu sync.Mutex
	m  map[string]map[*waiter]struct{} // image id → waiters

	stopOnce sync.Once
	stopped  chan struct{} // closed when the server shuts down
}

// stop ends every wait, now and to come.
func (ws *waiters) stop() { ws.stopOnce.Do(func() { close(ws.stopped) }) }

// waiter is one waiting request; ch receives a token when any of its images
// may have changed.
type waiter struct {
	ch  chan struct{}
	ids []string
}

// subscribe registers interest in ids; call the returned waiter's cancel via
// unsubscribe when done.
func (ws *waiters) subscribe(ids []string) *waiter {
	w := &waiter{ch: make(chan struct{}, 1), ids: ids}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for _, id := range ids {
		set := ws.m[id]
		if set == nil {
			set = map[*waiter]struct{}{}
			ws.m[id] = set
		}
		set[w] = struct{}{}
	}
	return w
}

// unsubscribe removes w.
func (ws *waiters) unsubscribe(w *waiter) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for _, id := range w.ids {
		set := ws.m[id]
		delete(set, w)
		if len(set) == 0 {
			delete(ws.m, id)
		}
	}
}

// notify wakes every waiter of id without blocking.
func (ws *waiters) notify(id string) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for w := range ws.m[id] {
		select {
		case w.ch <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
}
