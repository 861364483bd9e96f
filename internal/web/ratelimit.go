package web

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/glimpse-oss/glimpse/internal/store"
)

// RateLimit bounds what each tenant may ask of /v1. The zero value sets no
// limit at all.
type RateLimit struct {
	// PerSecond is the sustained rate of /v1 requests each tenant may send
	// (a token bucket refilled at this rate); 0 turns the limit off.
	PerSecond float64
	// Burst is the bucket's size: how many requests a quiet tenant may send
	// at once. Default: twice PerSecond, at least 1.
	Burst int
	// MaxUploads caps each tenant's uploads in flight (POST /v1/images and
	// PUT /v1/uploads/{id}, for as long as the request lasts, ?wait=
	// included); 0 means no cap.
	MaxUploads int
}

// Throttling constants.
const (
	// unauthenticated is the metric label of requests whose key is unknown
	// or missing where one is required; they share a bucket per client IP.
	unauthenticated = "(unauthenticated)"
	// keyCacheTTL is how long the throttle remembers which tenant a key
	// secret belongs to. It only picks the bucket: every request is still
	// authenticated afresh, so a revoked key is refused at once.
	keyCacheTTL = 10 * time.Second
	// keyCacheMax bounds the cache; beyond it, expired entries go, then all.
	keyCacheMax = 4096
	// sweepEvery is how often idle, full buckets are forgotten.
	sweepEvery = time.Minute
)

// throttle charges every /v1 request to its tenant's token bucket and caps
// each tenant's uploads in flight; a request over either limit is answered
// 429 with Retry-After before it reaches its handler.
type throttle struct {
	cfg         RateLimit
	requireKeys bool
	defTenant   string
	auth        func(ctx context.Context, secret string) (string, error)
	signedKey   func(ctx context.Context, r *http.Request) (string, bool)
	now         func() time.Time
	throttled   *prometheus.CounterVec

	mu        sync.Mutex
	buckets   map[string]*bucket // "t:"+tenant, or "ip:"+address
	keys      map[[32]byte]cachedKey
	lastSweep time.Time
}

// bucket is one tenant's (or one unauthenticated client's) state.
type bucket struct {
	tokens   float64
	at       time.Time // when tokens was last brought up to date
	inflight int       // uploads being served
}

// cachedKey is what a key secret resolved to: a tenant, or "" for a key
// that does not authenticate.
type cachedKey struct {
	tenant string
	until  time.Time
}

// withThrottle wraps next with the tenant limits of s.cfg.RateLimit; with no
// limit set it returns next unchanged.
func (s *Server) withThrottle(next http.Handler) (http.Handler, error) {
	rl := s.cfg.RateLimit
	if rl.PerSecond < 0 || math.IsNaN(rl.PerSecond) || math.IsInf(rl.PerSecond, 0) || rl.Burst < 0 || rl.MaxUploads < 0 {
		return nil, errors.New("web: Config.RateLimit fields must be 0 (off) or positive")
	}
	if rl.PerSecond == 0 && rl.MaxUploads == 0 {
		return next, nil
	}
	if rl.PerSecond > 0 && rl.Burst == 0 {
		rl.Burst = max(1, int(math.Ceil(2*rl.PerSecond)))
	}
	th := &throttle{
		cfg:         rl,
		requireKeys: s.cfg.RequireKeys,
		defTenant:   s.cfg.DefaultTenant,
		now:         func() time.Time { return s.now() },
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "glimpse_http_throttled_total",
			Help: "Requests refused with 429 by tenant and reason (rate: over the request rate; uploads: too many uploads in flight).",
		}, []string{"tenant", "reason"}),
		buckets: map[string]*bucket{},
		keys:    map[[32]byte]cachedKey{},
	}
	th.auth = func(ctx context.Context, secret string) (string, error) {
		k, err := s.deps.Store.Authenticate(ctx, secret)
		return k.Tenant, err
	}
	if sg := s.deps.Signer; sg != nil {
		th.signedKey = func(ctx context.Context, r *http.Request) (string, bool) {
			key, _, err := sg.KeyFromSignedURL(ctx, r.URL)
			return key, err == nil
		}
	}
	if err := s.deps.Registerer.Register(th.throttled); err != nil {
		return nil, fmt.Errorf("web: register metrics: %w", err)
	}
	return th.wrap(next), nil
}

// wrap is the throttling handler.
func (th *throttle) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/v1/") {
			next.ServeHTTP(w, r)
			return
		}
		id, tenant := th.identify(r)
		if tenant != unauthenticated {
			// The access log names the tenant even when the answer is a 429.
			infoFrom(r.Context()).tenant = tenant
		}
		upload := isUpload(r)
		release, refusal := th.admit(id, upload, w.Header())
		if refusal != nil {
			th.throttled.WithLabelValues(tenant, refusal.reason).Inc()
			writeProblem(w, http.StatusTooManyRequests, refusal.detail,
				http.Header{"Retry-After": {strconv.Itoa(refusal.retryAfter)}})
			return
		}
		if release != nil {
			release = sync.OnceFunc(release)
			defer release()
			r = r.WithContext(context.WithValue(r.Context(), uploadSlotKey{}, release))
		}
		next.ServeHTTP(w, r)
	})
}

// uploadSlotKey is the context key of the function that frees the upload
// slot a request holds.
type uploadSlotKey struct{}

// releaseUploadSlot frees the upload slot of the request ctx belongs to, if
// it holds one: an upload whose bytes are stored and whose jobs are queued
// no longer counts against the cap while it waits for results (?wait=).
func releaseUploadSlot(ctx context.Context) {
	if release, ok := ctx.Value(uploadSlotKey{}).(func()); ok {
		release()
	}
}

// isUpload reports whether r sends image bytes.
func isUpload(r *http.Request) bool {
	return r.Method == http.MethodPost && r.URL.Path == "/v1/images" ||
		r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/v1/uploads/")
}

// refusal says why a request was throttled.
type refusal struct {
	reason     string // metric label: "rate" or "uploads"
	detail     string
	retryAfter int // seconds
}

// admit charges one request to bucket id. It returns a refusal, or the
// function that frees the upload slot the request holds (nil when it holds
// none). It sets the RateLimit-* headers on h when a rate is set.
func (th *throttle) admit(id string, upload bool, h http.Header) (release func(), _ *refusal) {
	now := th.now()
	th.mu.Lock()
	defer th.mu.Unlock()
	th.sweep(now)
	b := th.buckets[id]
	if b == nil {
		b = &bucket{tokens: float64(th.cfg.Burst), at: now}
		th.buckets[id] = b
	}
	if upload && th.cfg.MaxUploads > 0 && b.inflight >= th.cfg.MaxUploads {
		return nil, &refusal{reason: "uploads", retryAfter: 1, detail: fmt.Sprintf(
			"%s already has %d uploads in progress, the most allowed at once; retry when one finishes",
			who(id), th.cfg.MaxUploads)}
	}
	if rate := th.cfg.PerSecond; rate > 0 {
		th.refill(b, now)
		burst := float64(th.cfg.Burst)
		if b.tokens < 1 {
			wait := int(math.Ceil((1 - b.tokens) / rate))
			setRateHeaders(h, th.cfg.Burst, 0, int(math.Ceil((burst-b.tokens)/rate)))
			return nil, &refusal{reason: "rate", retryAfter: max(1, wait), detail: fmt.Sprintf(
				"%s is over its rate limit of %s requests per second (bursts of %d); retry in %d s",
				who(id), strconv.FormatFloat(rate, 'f', -1, 64), th.cfg.Burst, max(1, wait))}
		}
		b.tokens--
		setRateHeaders(h, th.cfg.Burst, int(b.tokens), int(math.Ceil((burst-b.tokens)/rate)))
	}
	if !upload || th.cfg.MaxUploads == 0 {
		return nil, nil
	}
	b.inflight++
	return func() {
		th.mu.Lock()
		defer th.mu.Unlock()
		b.inflight--
	}, nil
}

// refill brings b's tokens up to now.
func (th *throttle) refill(b *bucket, now time.Time) {
	if el := now.Sub(b.at).Seconds(); el > 0 {
		b.tokens = min(float64(th.cfg.Burst), b.tokens+el*th.cfg.PerSecond)
	}
	b.at = now
}

// setRateHeaders sets the RateLimit-Limit, -Remaining and -Reset headers
// (draft-ietf-httpapi-ratelimit-headers): the bucket's size, the requests
// left in it, and the seconds until it is full again.
func setRateHeaders(h http.Header, limit, remaining, reset int) {
	h.Set("RateLimit-Limit", strconv.Itoa(limit))
	h.Set("RateLimit-Remaining", strconv.Itoa(remaining))
	h.Set("RateLimit-Reset", strconv.Itoa(reset))
}

// who names a bucket in a problem detail.
func who(id string) string {
	if t, ok := strings.CutPrefix(id, "t:"); ok {
		return fmt.Sprintf("tenant %q", t)
	}
	return "this client (no valid API key)"
}

// sweep forgets buckets that are full and idle, which is the state a new
// bucket starts in, and expired key cache entries. Call with th.mu held.
func (th *throttle) sweep(now time.Time) {
	if now.Sub(th.lastSweep) < sweepEvery {
		return
	}
	th.lastSweep = now
	for id, b := range th.buckets {
		if b.inflight > 0 {
			continue
		}
		if th.cfg.PerSecond > 0 {
			th.refill(b, now)
			if b.tokens < float64(th.cfg.Burst) {
				continue
			}
		}
		delete(th.buckets, id)
	}
	for k, c := range th.keys {
		if now.After(c.until) {
			delete(th.keys, k)
		}
	}
}

// identify names the bucket a request is charged to and its tenant label.
// Requests with a valid key (or none, where none is needed) are charged to
// their tenant; others to their client address, so that guessing keys
// cannot drain a tenant's budget or grow the table without bound.
func (th *throttle) identify(r *http.Request) (id, tenant string) {
	anon := func() (string, string) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		return "ip:" + host, unauthenticated
	}
	byTenant := func(t string) (string, string) { return "t:" + t, t }

	if r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/v1/uploads/") {
		// A pre-signed upload: the signed URL names the tenant.
		if th.signedKey == nil {
			return anon()
		}
		key, ok := th.signedKey(r.Context(), r)
		rest, isUpload := strings.CutPrefix(key, uploadKeyPrefix)
		t, _, found := strings.Cut(rest, "/")
		if !ok || !isUpload || !found || t == "" {
			return anon()
		}
		return byTenant(t)
	}
	apiKey := r.Header.Get("X-API-Key")
	if r.URL.Path == "/v1/events" && apiKey == "" && r.Header.Get("Authorization") == "" {
		apiKey = r.URL.Query().Get("key") // EventSource cannot send headers
	}
	secret, err := credentials(r.Header.Get("Authorization"), apiKey)
	switch {
	case err != nil:
		return anon()
	case secret == "" && th.requireKeys:
		return anon()
	case secret == "":
		return byTenant(th.defTenant)
	}
	if t := th.tenantOfKey(r.Context(), secret); t != "" {
		return byTenant(t)
	}
	return anon()
}

// tenantOfKey resolves a key secret to its tenant through a short-lived
// cache, so that a flood of throttled requests costs no store lookups. It
// returns "" for keys that do not authenticate.
func (th *throttle) tenantOfKey(ctx context.Context, secret string) string {
	sum := sha256.Sum256([]byte(secret))
	now := th.now()
	th.mu.Lock()
	c, ok := th.keys[sum]
	th.mu.Unlock()
	if ok && now.Before(c.until) {
		return c.tenant
	}
	t, err := th.auth(ctx, secret)
	switch {
	case errors.Is(err, store.ErrUnauthorized):
		t = "" // unknown or revoked: remembered like a tenant
	case err != nil:
		// The store is failing; the handler's own authentication answers
		// the request. Charge it to the client, and remember nothing.
		return ""
	}
	th.mu.Lock()
	defer th.mu.Unlock()
	if len(th.keys) >= keyCacheMax {
		for k, c := range th.keys {
			if now.After(c.until) {
				delete(th.keys, k)
			}
		}
		if len(th.keys) >= keyCacheMax {
			clear(th.keys)
		}
	}
	th.keys[sum] = cachedKey{tenant: t, until: now.Add(keyCacheTTL)}
	return t
}
