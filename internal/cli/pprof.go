package cli

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// startProfiler serves net/http/pprof on --pprof-addr, on a listener of its
// own so that the profiler is never reachable through the API's address.
// It runs for the life of the process.
func (g *globals) startProfiler() error {
	if g.pprofAddr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", g.pprofAddr)
	if err != nil {
		return fmt.Errorf("--pprof-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(g.stderr, "glimpse: profiler on %s stopped: %v\n", ln.Addr(), err)
		}
	}()
	fmt.Fprintf(g.stderr, "glimpse: profiler at http://%s/debug/pprof/\n", ln.Addr())
	return nil
}
