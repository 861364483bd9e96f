package e2e

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

// loadSummary is the part of `glimpse load --json`'s summary the tests read.
type loadSummary struct {
	Sent       int            `json:"sent"`
	Done       int            `json:"done"`
	Errors     int            `json:"errors"`
	Throughput float64        `json:"throughput"`
	ErrorKinds map[string]int `json:"errors_by_kind"`
	Latency    struct {
		N   int     `json:"n"`
		P50 float64 `json:"p50_ms"`
		P99 float64 `json:"p99_ms"`
	} `json:"latency"`
	QueueWait struct {
		P50 float64 `json:"p50_ms"`
	} `json:"queue_wait"`
	Processing struct {
		P50 float64 `json:"p50_ms"`
	} `json:"processing"`
	Checks []struct {
		SLO string `json:"slo"`
		Met bool   `json:"met"`
	} `json:"checks"`
}

// lastJSON decodes the last line of out.
func lastJSON(t *testing.T, out string, v any) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), v); err != nil {
		t.Fatalf("last line of %q: %v", out, err)
	}
}

func TestLoadCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	s := startServe(t, t.TempDir())

	cases := []struct {
		name string
		args []string
	}{
		{"closed loop, async", []string{"--concurrency", "3"}},
		{"open loop, sync", []string{"--rate", "8", "--wait", "30s"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"load", "--url", s.URL, "--generate", "320x240", "--count", "12",
				"--json", "--check", "errors=0"}, tc.args...)
			stdout, stderr, code := run(t, args...)
			if code != 0 {
				t.Fatalf("exit code %d; want 0\nstdout: %s\nstderr: %s", code, stdout, stderr)
			}
			var sum loadSummary
			lastJSON(t, stdout, &sum)
			if sum.Sent != 12 || sum.Done != 12 || sum.Errors != 0 || sum.Latency.N != 12 {
				t.Errorf("sent %d done %d errors %d (%v) latency n %d; want 12, 12, 0, 12",
					sum.Sent, sum.Done, sum.Errors, sum.ErrorKinds, sum.Latency.N)
			}
			if len(sum.Checks) != 1 || !sum.Checks[0].Met {
				t.Errorf("checks = %+v; want errors=0 met", sum.Checks)
			}
			t.Logf("%s: %.1f img/s, latency p50 %.0fms p99 %.0fms, queue wait p50 %.0fms, processing p50 %.0fms",
				tc.name, sum.Throughput, sum.Latency.P50, sum.Latency.P99, sum.QueueWait.P50, sum.Processing.P50)
		})
	}

	t.Run("impossible SLO fails with 3", func(t *testing.T) {
		stdout, stderr, code := run(t, "load", "--url", s.URL, "--generate", "64x64", "--count", "3",
			"--check", "p99<1ns,errors=0")
		if code != 3 {
			t.Fatalf("exit code %d; want 3\nstdout: %s\nstderr: %s", code, stdout, stderr)
		}
		if !strings.Contains(stderr, "p99<1ns") || strings.Contains(stderr, "errors=0 missed") {
			t.Errorf("stderr %q; want it to name p99<1ns as missed, and only it", stderr)
		}
		if !strings.Contains(stdout, "✗ p99<1ns missed") || !strings.Contains(stdout, "✓ errors=0 met") {
			t.Errorf("stdout lacks the check lines:\n%s", stdout)
		}
	})

	t.Run("print results", func(t *testing.T) {
		dir := t.TempDir()
		_ = dir
		args := []string{"load", "--url", s.URL, "--print-results", "--wait", "30s"}
		args = append(args, photo(t, "chelsea.png"), photo(t, "coffee.png"))
		stdout, stderr, code := run(t, args...)
		if code != 0 {
			t.Fatalf("exit code %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
		}
		line := regexp.MustCompile(`(?m)^\S*(chelsea|coffee)\.png → (.+) \((0\.\d\d|1\.00)\)`)
		found := map[string]string{}
		for _, m := range line.FindAllStringSubmatch(stdout, -1) {
			found[m[1]] = m[2]
		}
		if found["chelsea"] != "Egyptian cat" || found["coffee"] != "espresso" {
			t.Errorf("result lines %v; want chelsea → Egyptian cat and coffee → espresso in\n%s", found, stdout)
		}
	})

	t.Run("bad flags", func(t *testing.T) {
		cases := []struct {
			args []string
			want string
		}{
			{[]string{"--generate", "64x64", "--check", "p95<1s"}, `unknown metric "p95"`},
			{[]string{"--generate", "big"}, "--generate"},
			{[]string{"--generate", "64x64", "--features", "smell"}, `unknown feature "smell"`},
			{[]string{}, "nothing to send"},
		}
		for _, tc := range cases {
			_, stderr, code := run(t, append([]string{"load", "--url", s.URL}, tc.args...)...)
			if code != 1 || !strings.Contains(stderr, tc.want) {
				t.Errorf("load %v: exit %d, stderr %q; want 1 and %q", tc.args, code, stderr, tc.want)
			}
		}
	})
}
