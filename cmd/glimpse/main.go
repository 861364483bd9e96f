// Command glimpse is an elastic image-recognition service: `glimpse serve`
// runs all of it on one machine; its other subcommands run its roles apart,
// classify files offline and manage models and keys. See `glimpse --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/glimpse-oss/glimpse/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
