package web

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/glimpse-oss/glimpse/internal/job"
)

// Server-sent events: GET /v1/events streams, per tenant, an "image" event
// with the image's JSON whenever one of the tenant's images is created or
// reaches a terminal status. Browsers' EventSource cannot send headers, so
// this route alone also accepts the API key as ?key=.

const (
	// heartbeatEvery is the interval of the comment lines that keep proxies
	// from closing an idle stream.
	heartbeatEvery = 15 * time.Second
	// subscriberBuffer is how many events a slow stream may fall behind
	// before it is told to resync.
	subscriberBuffer = 64
	// sseRetryMillis is the reconnect delay suggested to EventSource.
	sseRetryMillis = 2000
)

// event is one change to announce: the image itself when the announcer has
// it, else its id to be read from the store by the stream's own goroutine.
type event struct {
	img *job.Image
	id  string
}

// subscriber is one open event stream.
type subscriber struct {
	tenant string
	ch     chan event
	// lagged is set when an event was dropped because ch was full; the
	// stream then sends a "resync" event so the client reloads.
	mu     sync.Mutex
	lagged bool
}

// broker fans image changes out to the event streams of their tenant.
type broker struct {
	mu     sync.Mutex
	subs   map[string]map[*subscriber]struct{} // tenant → streams
	closed chan struct{}                       // closed by close: streams end
	once   sync.Once
}

func newBroker() *broker {
	return &broker{subs: map[string]map[*subscriber]struct{}{}, closed: make(chan struct{})}
}

func (b *broker) subscribe(tenant string) *subscriber {
	sub := &subscriber{tenant: tenant, ch: make(chan event, subscriberBuffer)}
	b.mu.Lock()
	defer b.mu.Unlock()
	set := b.subs[tenant]
	if set == nil {
		set = map[*subscriber]struct{}{}
		b.subs[tenant] = set
	}
	set[sub] = struct{}{}
	return sub
}

func (b *broker) unsubscribe(sub *subscriber) {
	b.mu.Lock()
	defer b.mu.Unlock()
	set := b.subs[sub.tenant]
	delete(set, sub)
	if len(set) == 0 {
		delete(b.subs, sub.tenant)
	}
}

// publish hands ev to every stream of tenant without blocking.
func (b *broker) publish(tenant string, ev event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for sub := range b.subs[tenant] {
		select {
		case sub.ch <- ev:
		default:
			sub.mu.Lock()
			sub.lagged = true
			sub.mu.Unlock()
		}
	}
}

// count is the number of open streams, for tests.
func (b *broker) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, set := range b.subs {
		n += len(set)
	}
	return n
}

func (b *broker) close() { b.once.Do(func() { close(b.closed) }) }

// CloseStreams ends every open event stream and refuses new ones. Call it
// when the HTTP server shuts down (http.Server.RegisterOnShutdown), since
// Shutdown waits for streams that would otherwise never end.
func (s *Server) CloseStreams() { s.events.close() }

// Drain makes the server's long requests end: event streams close, and
// uploads waiting for their results (wait=) answer at once with the images
// as they stand, 202 for those not finished, which are safely queued. Call
// it when the HTTP server shuts down (http.Server.RegisterOnShutdown):
// Shutdown waits for every request, and a client would rather have its
// image's id than a dropped connection.
func (s *Server) Drain() {
	s.CloseStreams()
	s.waiters.stop()
}

// announcingStore wraps the Store so that every image an upload creates is
// announced on the event streams; the upload path itself stays unaware.
type announcingStore struct {
	Store
	events *broker
}

func (a announcingStore) CreateImage(ctx context.Context, img *job.Image) (*job.Image, bool, error) {
	stored, created, err := a.Store.CreateImage(ctx, img)
	if err == nil && created {
		a.events.publish(stored.Tenant, event{img: stored})
	}
	return stored, created, err
}

// Reopen announces an image asked for more features, queued again.
func (a announcingStore) Reopen(ctx context.Context, tenant, id string, from, to []job.Feature) (*job.Image, bool, error) {
	img, ok, err := a.Store.Reopen(ctx, tenant, id, from, to)
	if err == nil && ok {
		a.events.publish(img.Tenant, event{img: img})
	}
	return img, ok, err
}

// eventsInput is GET /v1/events.
type eventsInput struct {
	Key string `query:"key" doc:"API key, for clients that cannot send headers (EventSource); prefer the Authorization header elsewhere"`
}

// registerEvents adds GET /v1/events.
func (s *Server) registerEvents() {
	sec := s.security()
	sec = append(sec, map[string][]string{"queryKey": {}})
	s.api.OpenAPI().Components.SecuritySchemes["queryKey"] = &huma.SecurityScheme{
		Type: "apiKey", In: "query", Name: "key",
		Description: "API key as ?key=, accepted by GET /v1/events only (EventSource cannot set headers)",
	}
	huma.Register(s.api, huma.Operation{
		OperationID: "image-events",
		Method:      http.MethodGet,
		Path:        "/v1/events",
		Summary:     "Stream image changes (server-sent events)",
		Description: "A text/event-stream of the caller's tenant. Event `ready` is sent once the stream is " +
			"subscribed (reload any list then); event `image` carries the image JSON each time an image is " +
			"created, starts `processing`, is queued again for more features, or reaches `done` or `failed`; " +
			"event `resync` means events were dropped for a slow " +
			"reader and the client should reload. Comment lines are sent as heartbeats. Because EventSource " +
			"cannot send headers, this route also accepts the API key as `?key=`.",
		Tags:        []string{"images"},
		Security:    sec,
		Middlewares: huma.Middlewares{s.keyFromQuery, s.authenticate},
		Errors:      []int{http.StatusUnauthorized, http.StatusServiceUnavailable},
		Responses: map[string]*huma.Response{
			"200": {Description: "The event stream", Content: map[string]*huma.MediaType{
				"text/event-stream": {Schema: &huma.Schema{Type: "string"}},
			}},
		},
	}, s.streamEvents)
}

// keyFromQuery lets ?key= stand in for the X-API-Key header when the
// request carries no credentials header.
func (s *Server) keyFromQuery(ctx huma.Context, next func(huma.Context)) {
	if key := ctx.Query("key"); key != "" && ctx.Header("Authorization") == "" && ctx.Header("X-API-Key") == "" {
		r, _ := humago.Unwrap(ctx)
		r.Header.Set("X-API-Key", key)
	}
	next(ctx)
}

// streamEvents is GET /v1/events.
func (s *Server) streamEvents(ctx context.Context, _ *eventsInput) (*huma.StreamResponse, error) {
	select {
	case <-s.events.closed:
		return nil, retryAfter(huma.Error503ServiceUnavailable("the server is shutting down; reconnect shortly"), "2")
	default:
	}
	tenant := tenantOf(ctx)
	return &huma.StreamResponse{Body: func(hctx huma.Context) {
		_, w := humago.Unwrap(hctx)
		rc := http.NewResponseController(w)
		h := w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
		w.WriteHeader(http.StatusOK)

		sub := s.events.subscribe(tenant)
		defer s.events.unsubscribe(sub)
		send := func(name string, v any) bool {
			b, err := json.Marshal(v)
			if err != nil {
				return false
			}
			if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, b); err != nil {
				return false
			}
			return rc.Flush() == nil
		}
		if _, err := fmt.Fprintf(w, "retry: %d\n\n", sseRetryMillis); err != nil {
			return
		}
		if !send("ready", map[string]string{"tenant": tenant}) {
			return
		}

		reqCtx := hctx.Context()
		beat := time.NewTicker(heartbeatEvery)
		defer beat.Stop()
		for {
			select {
			case <-reqCtx.Done():
				return
			case <-s.events.closed:
				return
			case <-beat.C:
				if _, err := fmt.Fprint(w, ": heartbeat\n\n"); err != nil || rc.Flush() != nil {
					return
				}
			case ev := <-sub.ch:
				img := ev.img
				if img == nil {
					fresh, err := s.deps.Store.GetImage(reqCtx, tenant, ev.id)
					if err != nil {
						if reqCtx.Err() == nil {
							s.log.LogAttrs(reqCtx, slog.LevelDebug, "web: event for an image that cannot be read",
								slog.String("image_id", ev.id), slog.Any("err", err))
						}
						continue
					}
					img = fresh
				}
				if !send("image", img) {
					return
				}
				sub.mu.Lock()
				lagged := sub.lagged
				sub.lagged = false
				sub.mu.Unlock()
				if lagged && !send("resync", map[string]string{"reason": "events were dropped; reload"}) {
					return
				}
			}
		}
	}}, nil
}
