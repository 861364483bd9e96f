package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/glimpse-oss/glimpse/internal/imagedata"
)

// workerCmdFlags configure `glimpse worker`.
type workerCmdFlags struct {
	engineFlags
	limitFlags
	workerFlags
	metricsAddr string
}

func newWorkerCmd(g *globals) *cobra.Command {
	f := &workerCmdFlags{}
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run recognition workers alone: pull jobs, analyze, store results",
		Long: `worker runs a pool of workers against the engines named by URL. Start as many worker
processes on as many machines as the backlog needs (or let 'glimpse autoscaler' do it); each
pulls jobs from the shared JetStream consumer. SIGTERM drains it: each worker finishes the
job it holds (up to --drain-timeout) and the process exits; nothing is lost.`,
		Example: `  glimpse worker --workers 2 --queue nats://nats-1:4222 \
    --blob 's3://glimpse?endpoint=http://s3:7070&region=us-east-1&use_path_style=true' \
    --db postgres://glimpse@db/glimpse --metrics-addr :9090`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			log, err := g.logger()
			if err != nil {
				return err
			}
			tuneMemory(log)
			reg := newRegistry()
			model, err := loadModel(f.models, f.ortLib)
			if err != nil {
				return err
			}
			eng, err := openEngines(ctx, log, reg, f.engineFlags)
			if err != nil {
				return err
			}
			defer eng.close()
			pool, drain, err := startWorkers(log, reg, eng, model, &f.workerFlags, f.limits(), f.ackWait)
			if err != nil {
				return err
			}
			actors := []actor{drain}
			metrics := "off"
			if f.metricsAddr != "" {
				addr, run, err := serveMetrics(log, f.metricsAddr, reg)
				if err != nil {
					return err
				}
				actors = append(actors, run)
				metrics = "http://" + addr.String() + "/metrics"
			}
			if err := pool.SetSize(f.workers); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "Glimpse %s worker is running: %d workers, model %s (JPEG decoder: %s)\n  queue    %s\n  blobs    %s\n  store    %s\n  metrics  %s\n",
				version, f.workers, model.Spec.Name, imagedata.Backend(), eng.where["queue"], eng.where["blobs"], eng.where["store"], metrics)
			return runActors(ctx, log, actors...)
		},
	}
	f.workerFlags.register(cmd.Flags())
	f.engineFlags.register(cmd.Flags())
	f.limitFlags.register(cmd.Flags())
	cmd.Flags().StringVar(&f.metricsAddr, "metrics-addr", "", "serve /metrics and /healthz on this address (e.g. :9090)")
	return cmd
}
