package cli

import (
	"context"
	"fmt"
	"runtime"
	"strings"

	"github.com/spf13/cobra"

	"github.com/glimpse-oss/glimpse/internal/autoscale"
	"github.com/glimpse-oss/glimpse/internal/autoscale/inproc"
	"github.com/glimpse-oss/glimpse/internal/imagedata"
)

// serveFlags configure `glimpse serve`: every role in one process.
type serveFlags struct {
	engineFlags
	limitFlags
	apiFlags
	workerFlags
	autoscale bool
	scale     autoscaleFlags
}

func newServeCmd(g *globals) *cobra.Command {
	f := &serveFlags{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the whole service on this machine (API, queue, workers, store) with embedded defaults",
		Long: `serve runs every role of Glimpse in one process with embedded defaults:
  queue   NATS JetStream, embedded (no network listener), fsync before every acknowledged upload
  blobs   files under DATA/blobs (inputs/…, results/<id>.json, thumbnails/…)
  store   SQLite at DATA/glimpse.db
  workers an in-process pool, one ONNX Runtime session each

--queue, --blob and --db swap any embedded default for a real engine (see 'glimpse api'
and 'glimpse worker' to run the roles on separate machines).

On a loopback address (the default) it runs open: requests without an API key act as the
tenant "default". On any other address it requires keys (make one with 'glimpse keys create')
unless you pass --open.

Stop it with Ctrl-C or SIGTERM: it stops taking uploads, lets workers finish the jobs they
hold (up to --drain-timeout, then releases the rest for redelivery) and flushes everything.

Memory: serve, api and worker run Go's collector at GOGC=400 (fewer collections per image)
under a soft limit of 80% of their cgroup's memory limit when there is one; the GOGC and
GOMEMLIMIT environment variables override both.`,
		Example: `  glimpse serve
  glimpse serve --addr 127.0.0.1:9000 --data /var/lib/glimpse --workers 4
  GLIMPSE_MODELS=/opt/models glimpse serve --addr 0.0.0.0:8080`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// --workers N fixes the pool's size and turns autoscaling off.
			if cmd.Flags().Changed("workers") {
				f.autoscale = false
			}
			return runServe(cmd.Context(), g, f)
		},
	}
	fl := cmd.Flags()
	f.apiFlags.register(fl)
	f.engineFlags.register(fl)
	f.workerFlags.register(fl)
	fl.BoolVar(&f.autoscale, "autoscale", true, "scale workers between --min-workers and --max-workers from the queue's backlog (--workers N: a fixed pool instead)")
	// In one process an idle worker costs only its memory, and one per
	// core answers a burst at once: the autoscaler adds workers beyond
	// that, up to --max-workers, to overlap their waits on the disk.
	f.scale.register(fl, runtime.NumCPU())
	f.limitFlags.register(fl)
	return cmd
}

func runServe(ctx context.Context, g *globals, f *serveFlags) error {
	log, err := g.logger()
	if err != nil {
		return err
	}
	tuneMemory(log)
	if _, err := f.keysRequired(); err != nil {
		return err
	}
	reg := newRegistry()
	// The model comes first: without it nothing can be recognised, and the
	// error should say so before anything else starts.
	model, err := loadModel(f.models, f.ortLib)
	if err != nil {
		return err
	}
	eng, err := openEngines(ctx, log, reg, f.engineFlags)
	if err != nil {
		return err
	}
	defer eng.close()

	limits := f.limits()
	pool, drain, err := startWorkers(log, reg, eng, model, &f.workerFlags, limits, f.ackWait)
	if err != nil {
		return err
	}
	ep, serveAPI, err := startAPI(ctx, log, reg, eng, &f.apiFlags, limits, map[string]func(context.Context) error{
		"model": func(context.Context) error { return nil }, // loaded and verified before serving
	})
	if err != nil {
		return err
	}
	actors := []actor{serveAPI, drain}
	workers := fmt.Sprintf("%d, fixed", f.workers)
	if f.autoscale {
		ctl, err := autoscale.New(f.scale.config(), autoscale.Deps{
			Depth: eng.q, Actuator: inproc.New(pool), CPU: autoscale.NewProcStat(),
			Logger: log.With("component", "autoscale"), Registerer: reg,
		})
		if err != nil {
			return err
		}
		actors = append(actors, ctl.Run)
		workers = fmt.Sprintf("autoscaled %d–%d (target wait %s)", f.scale.min, f.scale.max, f.scale.targetWait)
		if err := pool.SetSize(f.scale.min); err != nil {
			return err
		}
	} else if err := pool.SetSize(f.workers); err != nil {
		return err
	}
	printBanner(g, f, ep, eng, model.Spec.Name, workers)
	return runActors(ctx, log, actors...)
}

// printBanner tells the user where Glimpse runs and how to try it.
func printBanner(g *globals, f *serveFlags, ep *endpoint, eng *engines, model, workers string) {
	access := "open (no API key needed)"
	if req, _ := f.keysRequired(); req {
		access = "API key required ('glimpse keys create --data " + f.data + "')"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Glimpse %s is running at %s\n", version, ep.url)
	fmt.Fprintf(&b, "  queue    %s\n  blobs    %s\n  store    %s\n", eng.where["queue"], eng.where["blobs"], eng.where["store"])
	fmt.Fprintf(&b, "  model    %s (JPEG decoder: %s)\n  workers  %s\n  access   %s\n", model, imagedata.Backend(), workers, access)
	b.WriteString(ep.tls)
	fmt.Fprintf(&b, "  try      curl -F file=@photo.jpg '%s/v1/images?wait=30s'\n", ep.url)
	fmt.Fprint(g.stdout, b.String())
}
