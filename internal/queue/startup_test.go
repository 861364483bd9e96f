package queue

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// freePorts returns n distinct TCP ports on 127.0.0.1 that were free a
// moment ago, holding every listener until all n are chosen (ports taken
// one at a time can repeat).
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// clusterNodes is the options of one server of an in-process three-server
// JetStream cluster, not yet started.
func clusterNodes(t testing.TB) []*server.Options {
	t.Helper()
	ports := freePorts(t, 3)
	var nodes []*server.Options
	for i := range 3 {
		var routes []*url.URL
		for j, p := range ports {
			if j != i {
				routes = append(routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", p)})
			}
		}
		nodes = append(nodes, &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1",
			Port:       -1,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			Cluster:    server.ClusterOpts{Name: "glimpse-test", Host: "127.0.0.1", Port: ports[i]},
			Routes:     routes,
			NoLog:      true,
			NoSigs:     true,
		})
	}
	return nodes
}

func startNode(t testing.TB, o *server.Options) *server.Server {
	t.Helper()
	s, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(s.Shutdown)
	return s
}

// TestOpenWaitsForClusterToForm opens the queue, with three replicas, on
// the first server of a cluster whose other two start a second later: until
// they do there is no meta leader and JetStream cannot answer. Open must
// wait that out (StartupWait), as a worker started alongside its NATS
// cluster does, and not fail.
func TestOpenWaitsForClusterToForm(t *testing.T) {
	nodes := clusterNodes(t)
	first := startNode(t, nodes[0])
	nc, err := nats.Connect(first.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()

	// Before the others start, the cluster cannot answer a stream request.
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	probe, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	_, err = js.Stream(probe, JobsStream)
	cancel()
	if err == nil || !startingUp(err) {
		t.Fatalf("a lone server of three answered a stream request with %v; want a start-up failure", err)
	}

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		q, err := Open(ctx, nc, Config{Replicas: 3, StartupWait: 45 * time.Second, Logger: quietLogger()})
		if err == nil {
			_, err = q.js.Stream(ctx, JobsStream)
		}
		done <- err
	}()
	time.Sleep(time.Second)
	select {
	case err := <-done:
		t.Fatalf("Open returned %v before the cluster formed", err)
	default:
	}
	startNode(t, nodes[1])
	startNode(t, nodes[2])
	if err := <-done; err != nil {
		t.Fatalf("Open after the cluster formed: %v", err)
	}
}

func TestStartingUp(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"request timed out", fmt.Errorf("wrapped: %w", context.DeadlineExceeded), true},
		{"nats timeout", nats.ErrTimeout, true},
		{"no meta leader", &jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}, true},
		{"peers not met", &jetstream.APIError{Code: 503, ErrorCode: 10023, Description: "insufficient resources"}, true},
		{"no JetStream", nats.ErrNoResponders, false},
		{"refused config", &jetstream.APIError{Code: 500, ErrorCode: 10058, Description: "stream name already in use"}, false},
		{"stream not found", jetstream.ErrStreamNotFound, false},
		{"other", errors.New("boom"), false},
	} {
		if got := startingUp(c.err); got != c.want {
			t.Errorf("%s: startingUp(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}

// TestWhileStartingStops checks whileStarting's bounds: a final error ends
// it at once, and a start-up failure past the deadline is returned.
func TestWhileStartingStops(t *testing.T) {
	q := &Queue{log: quietLogger()}
	calls := 0
	final := errors.New("refused")
	err := q.whileStarting(context.Background(), time.Now().Add(time.Minute), "x", func(context.Context) error { calls++; return final })
	if !errors.Is(err, final) || calls != 1 {
		t.Errorf("final error: got %v after %d calls, want it after 1", err, calls)
	}
	calls = 0
	err = q.whileStarting(context.Background(), time.Now().Add(600*time.Millisecond), "x", func(context.Context) error { calls++; return nats.ErrTimeout })
	if !errors.Is(err, nats.ErrTimeout) || calls < 2 || calls > 4 {
		t.Errorf("past the deadline: got %v after %d calls, want ErrTimeout after 2-4", err, calls)
	}
	calls = 0
	err = q.whileStarting(context.Background(), time.Now().Add(time.Minute), "x", func(context.Context) error {
		calls++
		if calls < 3 {
			return nats.ErrTimeout
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Errorf("recovering: got %v after %d calls, want nil after 3", err, calls)
	}
}
