package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

// apiCmdFlags configure `glimpse api`.
type apiCmdFlags struct {
	engineFlags
	limitFlags
	apiFlags
}

func newAPICmd(g *globals) *cobra.Command {
	f := &apiCmdFlags{}
	cmd := &cobra.Command{
		Use:   "api",
		Short: "Run the web tier alone: accept uploads, queue jobs, answer reads (no workers)",
		Long: `api runs the HTTP API against the engines named by URL, so that it can run on machines of
its own while 'glimpse worker' processes elsewhere do the recognition. It also handles dead
letters and re-publishes stranded jobs; running several api processes is safe.`,
		Example: `  glimpse api --addr 0.0.0.0:8080 --queue nats://nats-1:4222,nats://nats-2:4222 --replicas 3 \
    --blob 's3://glimpse?endpoint=http://s3:7070&region=us-east-1&use_path_style=true' \
    --db postgres://glimpse@db/glimpse`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			log, err := g.logger()
			if err != nil {
				return err
			}
			tuneMemory(log)
			reg := newRegistry()
			eng, err := openEngines(ctx, log, reg, f.engineFlags)
			if err != nil {
				return err
			}
			defer eng.close()
			ep, run, err := startAPI(ctx, log, reg, eng, &f.apiFlags, f.limits(), nil)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "Glimpse %s API is running at %s\n  queue    %s\n  blobs    %s\n  store    %s\n%s",
				version, ep.url, eng.where["queue"], eng.where["blobs"], eng.where["store"], ep.tls)
			return runActors(ctx, log, run)
		},
	}
	f.apiFlags.register(cmd.Flags())
	f.engineFlags.register(cmd.Flags())
	f.limitFlags.register(cmd.Flags())
	return cmd
}
