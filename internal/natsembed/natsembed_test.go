package natsembed

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func startServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	cfg.Logger = quietLogger()
	s, err := Start(cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

func TestStartConfig(t *testing.T) {
	tests := []struct {
		name      string
		listen    string
		wantURL   bool
		syncAlway bool
	}{
		{name: "in-process only", listen: ""},
		{name: "tcp random port", listen: "127.0.0.1:0", wantURL: true},
		{name: "sync always", listen: "", syncAlway: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, Config{Listen: tt.listen, SyncAlways: tt.syncAlway})
			url := s.ClientURL()
			if got := url != ""; got != tt.wantURL {
				t.Fatalf("ClientURL() = %q; want non-empty %v", url, tt.wantURL)
			}
			if got := s.NATSServer().JetStreamConfig().SyncAlways; got != tt.syncAlway {
				t.Errorf("SyncAlways = %v; want %v", got, tt.syncAlway)
			}
			nc, err := s.Connect()
			if err != nil {
				t.Fatalf("Connect: %v", err)
			}
			defer nc.Close()
			if err := nc.Flush(); err != nil {
				t.Fatalf("Flush: %v", err)
			}
			if tt.wantURL {
				if strings.HasSuffix(url, ":0") || strings.HasSuffix(url, ":-1") {
					t.Fatalf("ClientURL() = %q; want a real port", url)
				}
				tc, err := nats.Connect(url)
				if err != nil {
					t.Fatalf("tcp connect %s: %v", url, err)
				}
				tc.Close()
			}
		})
	}
}

func TestStartErrors(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr error
		wantMsg string
	}{
		{name: "no dir", cfg: Config{}, wantErr: ErrNoDir},
		{name: "bad listen", cfg: Config{Dir: "x", Listen: "nonsense"}, wantMsg: "natsembed: listen address"},
		{name: "bad port", cfg: Config{Dir: "x", Listen: "127.0.0.1:99999"}, wantMsg: "bad port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			if cfg.Dir != "" {
				cfg.Dir = t.TempDir()
			}
			cfg.Logger = quietLogger()
			s, err := Start(cfg)
			if err == nil {
				s.Shutdown()
				t.Fatal("Start: got nil error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("Start: got %v; want %v", err, tt.wantErr)
			}
			if tt.wantMsg != "" && !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Start: got %q; want it to contain %q", err, tt.wantMsg)
			}
		})
	}
}

// TestRestartKeepsStreams checks that a stream and its messages survive a
// shutdown and a new Start on the same dir.
func TestRestartKeepsStreams(t *testing.T) {
	dir := t.TempDir()
	s, err := Start(Config{Dir: dir, SyncAlways: true, Logger: quietLogger()})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	nc, err := s.Connect()
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	ctx := context.Background()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream.New: %v", err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
	if _, err := js.Publish(ctx, "t", []byte("hello")); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	nc.Close()
	s.Shutdown()
	s.Shutdown() // second call is harmless

	s2 := startServer(t, Config{Dir: dir})
	nc2, err := s2.Connect()
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	defer nc2.Close()
	js2, err := jetstream.New(nc2)
	if err != nil {
		t.Fatalf("jetstream.New: %v", err)
	}
	st, err := js2.Stream(ctx, "T")
	if err != nil {
		t.Fatalf("Stream after restart: %v", err)
	}
	m, err := st.GetMsg(ctx, 1)
	if err != nil {
		t.Fatalf("GetMsg after restart: %v", err)
	}
	if got := string(m.Data); got != "hello" {
		t.Errorf("message after restart = %q; want %q", got, "hello")
	}
}
