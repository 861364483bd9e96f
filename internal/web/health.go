package web

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"sync"

	"github.com/danielgtaylor/huma/v2"
)

// healthOutput is the answer of /healthz.
type healthOutput struct {
	Body struct {
		Status string `json:"status" example:"ok"`
	}
}

// Readiness is the body of /readyz.
type Readiness struct {
	Status string            `json:"status" enum:"ready,unready" doc:"ready when every check passed"`
	Checks map[string]string `json:"checks" doc:"Each check's outcome: ok, or why it failed"`
}

// readyOutput is the answer of /readyz.
type readyOutput struct {
	Status int
	Body   Readiness
}

// registerHealth adds /healthz and /readyz.
func (s *Server) registerHealth() {
	huma.Register(s.api, huma.Operation{
		OperationID: "healthz",
		Method:      http.MethodGet,
		Path:        "/healthz",
		Summary:     "Liveness: 200 while the process serves",
		Tags:        []string{"operations"},
	}, func(context.Context, *struct{}) (*healthOutput, error) {
		out := &healthOutput{}
		out.Body.Status = "ok"
		return out, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "readyz",
		Method:      http.MethodGet,
		Path:        "/readyz",
		Summary:     "Readiness: 200 when queue, store, blobs and model are ready, else 503",
		Tags:        []string{"operations"},
		Responses: map[string]*huma.Response{
			"503": {Description: "Some check failed; the body lists each check"},
		},
	}, s.ready)
}

// ready runs every readiness check concurrently, each with its own timeout.
func (s *Server) ready(ctx context.Context, _ *struct{}) (*readyOutput, error) {
	names := make([]string, 0, len(s.deps.Ready))
	for name := range s.deps.Ready {
		names = append(names, name)
	}
	sort.Strings(names)
	results := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		check := s.deps.Ready[name]
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, readyTimeout)
			defer cancel()
			results[i] = runCheck(cctx, check)
		})
	}
	wg.Wait()

	out := &readyOutput{Status: http.StatusOK, Body: Readiness{Status: "ready", Checks: map[string]string{}}}
	for i, name := range names {
		if results[i] != nil {
			out.Status = http.StatusServiceUnavailable
			out.Body.Status = "unready"
			out.Body.Checks[name] = results[i].Error()
			continue
		}
		out.Body.Checks[name] = "ok"
	}
	return out, nil
}

// runCheck runs one check, turning a panic into an error and giving up when
// ctx expires even if the check ignores it.
func runCheck(ctx context.Context, check func(context.Context) error) error {
	done := make(chan error, 1)
	go func() {
		defer func() {
			if v := recover(); v != nil {
				done <- fmt.Errorf("check panicked: %v", v)
			}
		}()
		done <- check(ctx)
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("timed out after %s", readyTimeout)
	}
}
