package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// CORS: browsers on the origins in Config.CORSOrigins may call /v1 from
// their own pages (uploads included). Only exact origins are allowed, never
// "*": on loopback the API runs open, and any page the user visits could
// otherwise read the user's images.

// corsAllowHeaders are the request headers a cross-origin call may send.
const corsAllowHeaders = "Authorization, X-API-Key, Content-Type, Idempotency-Key, X-Request-Id"

// corsExposeHeaders are the response headers its script may read.
const corsExposeHeaders = "Location, Retry-After, X-Request-Id, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset"

// corsAllowMethods are the methods of the /v1 routes.
const corsAllowMethods = "GET, POST, PUT, DELETE"

// corsMaxAge is how long, in seconds, a browser may cache a preflight.
const corsMaxAge = "600"

// withCORS wraps next so that the allowed origins may call /v1; with none it
// returns next unchanged.
func withCORS(origins []string, next http.Handler) (http.Handler, error) {
	if len(origins) == 0 {
		return next, nil
	}
	allowed := make(map[string]bool, len(origins))
	for _, o := range origins {
		norm, err := normOrigin(o)
		if err != nil {
			return nil, err
		}
		allowed[norm] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" || !strings.HasPrefix(r.URL.Path, "/v1/") {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Add("Vary", "Origin")
		ok := allowed[strings.ToLower(origin)]
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			// A preflight: answered here, before authentication, since
			// browsers send it without credentials.
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			if !ok {
				writeProblem(w, http.StatusForbidden, fmt.Sprintf(
					"origin %q may not call this API; the server's --cors-origins must list it", truncate(origin, 100)), nil)
				return
			}
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Methods", corsAllowMethods)
			h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
			h.Set("Access-Control-Max-Age", corsMaxAge)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if ok {
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		}
		next.ServeHTTP(w, r)
	}), nil
}

// normOrigin checks that o is a bare origin, scheme://host[:port], and
// returns it in lower case.
func normOrigin(o string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(o))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("web: CORS origin %q: want scheme://host[:port], such as https://app.example.com (no path, no \"*\")", o)
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}
