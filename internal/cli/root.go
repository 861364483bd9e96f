// Package cli holds Glimpse's subcommands, one file each. Each turns flags and
// GLIMPSE_* environment variables into configuration and wires the packages
// explicitly; nothing here is global state.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// version is set at build time with -ldflags "-X …/internal/cli.version=v1.2.3".
var version = "dev"

// exitError carries a specific exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// Main runs the glimpse command line with args and returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "glimpse: %v\n", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

// globals are the flags every subcommand shares.
type globals struct {
	logLevel  string
	logFormat string
	pprofAddr string
	stdout    io.Writer
	stderr    io.Writer
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "glimpse",
		Short: "Glimpse — elastic image recognition: labels, and more, for every image you send",
		Long: `Glimpse recognises what is in images: ImageNet labels from a real deep-learning model
(MobileNetV2 on ONNX Runtime), with more analyzers to come. Images go through a durable
queue to workers; results land as JSON in blob storage and in a SQL store the API reads.

Start here:
  glimpse serve                    run everything on this machine (data in ./data)
  curl -F file=@cat.jpg 'http://127.0.0.1:8080/v1/images?wait=30s'
  glimpse classify photos/*.jpg    label files offline, no server needed

Every flag can also be set as an environment variable: --max-bytes is GLIMPSE_MAX_BYTES.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd); err != nil {
				return err
			}
			return g.startProfiler()
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	root.PersistentFlags().StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	root.PersistentFlags().StringVar(&g.pprofAddr, "pprof-addr", "", "serve Go's profiler (/debug/pprof/) on this address, e.g. 127.0.0.1:6060 (off when empty; keep it on loopback)")
	root.AddCommand(
		newServeCmd(g),
		newAutoscalerCmd(g),
		newAPICmd(g),
		newWorkerCmd(g),
		newClassifyCmd(g),
		newModelsCmd(g),
		newKeysCmd(g),
		newLoadCmd(g),
		newPumpCmd(g),
		newAnalyticsCmd(g),
		newVersionCmd(g),
	)
	return root
}

// logger builds the process logger from the shared flags.
func (g *globals) logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", g.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch g.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(g.stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(g.stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", g.logFormat)
}

// applyEnv sets every flag the user did not give from GLIMPSE_<FLAG_NAME>.
func applyEnv(cmd *cobra.Command) error {
	var errs []error
	set := func(f *pflag.Flag) {
		if f.Changed {
			return
		}
		name := "GLIMPSE_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", name, v, err))
			} else {
				f.Changed = true
			}
		}
	}
	cmd.Flags().VisitAll(set)
	cmd.InheritedFlags().VisitAll(set)
	return errors.Join(errs...)
}

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(g.stdout, "glimpse %s (%s)\n", version, buildInfo())
			return nil
		},
	}
}
