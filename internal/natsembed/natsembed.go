// Package natsembed runs a NATS server with JetStream inside the Glimpse
// process, so that `glimpse serve` needs no external broker. Clients in the
// same process connect through an in-process pipe rather than TCP; a TCP
// listener is opened only when asked for.
package natsembed

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// DefaultStartTimeout is how long Start waits for the server to accept
// connections when Config.StartTimeout is zero. Recovering a large
// JetStream store can take a while, so it is generous.
const DefaultStartTimeout = 30 * time.Second

// Config configures an embedded server.
type Config struct {
	// Dir is the JetStream store directory. It is required and created if
	// missing. Restarting on the same Dir recovers every stream.
	Dir string
	// Listen is the host:port of an optional TCP listener for clients in
	// other processes. Empty means no listener at all; port 0 picks a free
	// port, which ClientURL reports.
	Listen string
	// SyncAlways makes JetStream fsync every write before it acknowledges a
	// publish (sync_interval: always). Without it the server writes each
	// message to the operating system before acknowledging it and syncs
	// every two minutes: `glimpse serve` then makes each publish durable
	// with a syncfs of the file system (queue.Config.Syncer), and sets
	// SyncAlways only where syncfs cannot be relied on.
	SyncAlways bool
	// StartTimeout bounds the wait for the server to become ready;
	// DefaultStartTimeout when zero.
	StartTimeout time.Duration
	// ServerName names the server in logs and advisories; a random name
	// when empty.
	ServerName string
	// Logger receives the server's log lines; slog.Default() when nil.
	Logger *slog.Logger
}

// Server is a running embedded NATS server.
type Server struct {
	ns        *server.Server
	listening bool
}

// Start starts a server for cfg and waits until it accepts connections.
func Start(cfg Config) (*Server, error) {
	if cfg.Dir == "" {
		return nil, ErrNoDir
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("natsembed: store dir: %w", err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("natsembed: store dir: %w", err)
	}
	opts := &server.Options{
		ServerName: cfg.ServerName,
		JetStream:  true,
		StoreDir:   dir,
		SyncAlways: cfg.SyncAlways,
		NoSigs:     true,
	}
	if cfg.Listen == "" {
		opts.DontListen = true
	} else {
		host, port, err := splitListen(cfg.Listen)
		if err != nil {
			return nil, err
		}
		opts.Host, opts.Port = host, port
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsembed: new server: %w", err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	ns.SetLoggerV2(&slogAdapter{l: logger.With("component", "nats")}, false, false, false)
	ns.Start()
	wait := cfg.StartTimeout
	if wait <= 0 {
		wait = DefaultStartTimeout
	}
	if !ns.ReadyForConnections(wait) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("natsembed: server not ready after %s (store dir %s)", wait, dir)
	}
	if !ns.JetStreamEnabled() {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, ErrNoJetStream
	}
	return &Server{ns: ns, listening: !opts.DontListen}, nil
}

// splitListen turns "host:port" into server options; port 0 becomes the
// server's "random port" value.
func splitListen(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("natsembed: listen address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("natsembed: listen address %q: bad port", addr)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, port, nil
}

// Connect opens a client connection to the server through an in-process
// pipe; it works whether or not the server listens on TCP.
func (s *Server) Connect(opts ...nats.Option) (*nats.Conn, error) {
	opts = append([]nats.Option{nats.Name("glimpse-inproc")}, opts...)
	opts = append(opts, nats.InProcessServer(s.ns))
	nc, err := nats.Connect("", opts...)
	if err != nil {
		return nil, fmt.Errorf("natsembed: connect: %w", err)
	}
	return nc, nil
}

// ClientURL is the nats:// URL other processes connect to, or "" when the
// server does not listen on TCP.
func (s *Server) ClientURL() string {
	if !s.listening {
		return ""
	}
	return s.ns.ClientURL()
}

// Shutdown stops the server gracefully, flushing JetStream state to disk,
// and returns once it has stopped. It is safe to call more than once.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}

// NATSServer exposes the underlying server for tests and diagnostics.
func (s *Server) NATSServer() *server.Server { return s.ns }
