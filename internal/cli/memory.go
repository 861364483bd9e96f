package cli

import (
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// serverGCPercent is the garbage collector's target for the long-running
// roles when GOGC is not set. Each job allocates about a megabyte (the
// decoded pixels, the image's bytes) on a live heap of 10–20 MB, so at Go's
// default of 100 the collector runs every dozen images; at 400 it runs a
// quarter as often and a 1 MP image costs serve about 0.5 ms less CPU
// (measured with 600 uploads, see bench/), for a heap about 2.5 times
// larger. A memory limit found in the cgroup still bounds it (see
// tuneMemory).
const serverGCPercent = 400

// memLimitShare is the share of a cgroup's memory limit given to the Go
// runtime as its soft limit, leaving room for ONNX Runtime's and
// libjpeg-turbo's memory, which the Go runtime does not see.
const memLimitShare = 0.8

// tuneMemory sets the garbage collector for a long-running role: GOGC
// serverGCPercent unless GOGC is set, and a soft memory limit of
// memLimitShare of the cgroup's limit, when there is one, unless
// GOMEMLIMIT is set. Near the limit the collector runs as often as it must,
// so a container never pays for the higher GOGC with an out-of-memory kill.
func tuneMemory(log *slog.Logger) {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(serverGCPercent)
	}
	if _, set := os.LookupEnv("GOMEMLIMIT"); set {
		return
	}
	if limit, ok := cgroupMemoryLimit(); ok {
		debug.SetMemoryLimit(int64(float64(limit) * memLimitShare))
		log.Debug("memory limit from cgroup", "cgroup_bytes", limit, "go_soft_limit", int64(float64(limit)*memLimitShare))
	}
}

// cgroupMemoryLimit returns the memory limit of this process's cgroup (v2
// memory.max, else v1 memory.limit_in_bytes), and false when there is none.
func cgroupMemoryLimit() (int64, bool) {
	for _, path := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		return parseMemoryLimit(string(b))
	}
	return 0, false
}

// parseMemoryLimit reads a cgroup memory limit: "max" (v2) and v1's
// page-rounded 2^63 mean no limit.
func parseMemoryLimit(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n >= 1<<62 {
		return 0, false
	}
	return n, true
}
