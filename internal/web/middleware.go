package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the API's Prometheus collectors.
type metrics struct {
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	uploadBytes prometheus.Counter
}

// newMetrics creates the collectors and registers them on reg.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "glimpse_http_requests_total",
			Help: "HTTP requests served, by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "glimpse_http_request_duration_seconds",
			Help:    "Time to serve an HTTP request, by route pattern.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"route"}),
		uploadBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "glimpse_upload_bytes_total",
			Help: "Bytes of image files accepted by POST /v1/images.",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.uploadBytes} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("web: register metrics: %w", err)
		}
	}
	return m, nil
}

// requestInfo is per-request state shared between the outer middleware and
// the handlers; it lives in the request context.
type requestInfo struct {
	id     string
	tenant string // set by authentication
}

type requestInfoKey struct{}

// infoFrom returns the request's info, or an empty one outside a request.
func infoFrom(ctx context.Context) *requestInfo {
	if ri, ok := ctx.Value(requestInfoKey{}).(*requestInfo); ok {
		return ri
	}
	return &requestInfo{}
}

// middleware wraps next with request ids, security headers, panic recovery,
// metrics and access logging.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ri := &requestInfo{id: requestID(r.Header.Get("X-Request-Id"))}
		r = r.WithContext(context.WithValue(r.Context(), requestInfoKey{}, ri))
		h := w.Header()
		h.Set("X-Request-Id", ri.id)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		rec := &recorder{ResponseWriter: w}

		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.LogAttrs(r.Context(), slog.LevelError, "web: panic serving request",
					slog.String("request_id", ri.id), slog.String("method", r.Method),
					slog.String("path", r.URL.Path), slog.Any("panic", v),
					slog.String("stack", string(debug.Stack())))
				if !rec.wrote {
					writeProblem(rec, http.StatusInternalServerError,
						"internal error; quote request id "+ri.id+" when reporting it", nil)
				}
			}
			route := routeOf(r.Pattern)
			code := rec.status
			if code == 0 {
				code = http.StatusOK
			}
			elapsed := time.Since(start)
			s.metrics.requests.WithLabelValues(route, r.Method, strconv.Itoa(code)).Inc()
			s.metrics.duration.WithLabelValues(route).Observe(elapsed.Seconds())
			level := slog.LevelInfo
			switch {
			case code >= 500:
				level = slog.LevelWarn
			case route == "/healthz" || route == "/readyz" || route == "/metrics":
				level = slog.LevelDebug // probes and scrapes would drown the log
			}
			s.log.LogAttrs(r.Context(), level, "http request",
				slog.String("request_id", ri.id), slog.String("method", r.Method),
				slog.String("path", r.URL.Path), slog.String("route", route),
				slog.Int("status", code), slog.Int64("bytes", rec.bytes),
				slog.Duration("duration", elapsed), slog.String("tenant", ri.tenant),
				slog.String("remote", r.RemoteAddr))
		}()
		next.ServeHTTP(rec, r)
	})
}

// routeOf turns a ServeMux pattern such as "GET /v1/images/{id}" into the
// route label "/v1/images/{id}". Unmatched requests share one label so that
// scanners cannot blow up the metric's cardinality.
func routeOf(pattern string) string {
	if _, path, ok := strings.Cut(pattern, " "); ok {
		pattern = path
	}
	switch pattern {
	case "", "/":
		return "unmatched"
	case "/{$}":
		return "/"
	}
	return pattern
}

// requestID returns the client's request id when it is short and plain,
// else a fresh random one.
func requestID(in string) string {
	if in != "" && len(in) <= 64 && strings.IndexFunc(in, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
	}) < 0 {
		return in
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// recorder remembers the status and size of a response.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	wrote  bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if !r.wrote {
		r.status, r.wrote = http.StatusOK, true
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Flush passes flushes through, for streaming responses.
func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		r.wrote = true
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// problem is an RFC 9457 problem document, shaped like huma's ErrorModel.
type problem struct {
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
}

// writeProblem writes an application/problem+json response outside huma
// (unknown routes, panics). header, if not nil, is added to the response.
func writeProblem(w http.ResponseWriter, status int, detail string, header http.Header) {
	for k, vs := range header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Del("Content-Length")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(problem{
		Title:  http.StatusText(status),
		Status: status,
		Detail: detail,
	})
}

// probeMethods are the methods tried to tell a 405 from a 404.
var probeMethods = []string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
	http.MethodPatch, http.MethodDelete, http.MethodOptions,
}

// notFound answers requests no route matched: 405 with Allow when the path
// exists for other methods, else 404.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range probeMethods {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "" && pattern != "/" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		writeProblem(w, http.StatusMethodNotAllowed,
			fmt.Sprintf("method %s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, strings.Join(allow, ", ")),
			http.Header{"Allow": {strings.Join(allow, ", ")}})
		return
	}
	writeProblem(w, http.StatusNotFound,
		fmt.Sprintf("no route %s %s; see /docs for the API", r.Method, r.URL.Path), nil)
}

// internalErr logs err and returns a problem that does not leak it: 503
// with Retry-After when a dependency is unavailable (see classifyOutage),
// else 500.
func (s *Server) internalErr(ctx context.Context, what string, err error) error {
	id := infoFrom(ctx).id
	if p := unavailableErr(what, id, err); p != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "web: "+what+": dependency unavailable",
			slog.String("request_id", id), slog.Any("err", err))
		return p
	}
	s.log.LogAttrs(ctx, slog.LevelError, "web: "+what,
		slog.String("request_id", id), slog.Any("err", err))
	return huma.NewError(http.StatusInternalServerError,
		"internal error while "+what+"; quote request id "+id+" when reporting it")
}

// errorsAsMaxBytes reports whether err comes from http.MaxBytesReader.
func errorsAsMaxBytes(err error) (*http.MaxBytesError, bool) {
	var mbe *http.MaxBytesError
	ok := errors.As(err, &mbe)
	return mbe, ok
}
