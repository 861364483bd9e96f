package autoscale

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
)

// ProcStat samples the machine's CPU utilisation from /proc/stat (Linux).
type ProcStat struct {
	// Read returns the contents of /proc/stat; tests replace it.
	Read func() ([]byte, error)

	mu          sync.Mutex
	idle, total uint64
	primed      bool
}

// NewProcStat returns a sampler reading /proc/stat.
func NewProcStat() *ProcStat {
	return &ProcStat{Read: func() ([]byte, error) { return os.ReadFile("/proc/stat") }}
}

// Utilisation returns the busy fraction of all CPUs since the previous call;
// the first call measures since boot.
func (s *ProcStat) Utilisation() (float64, error) {
	b, err := s.Read()
	if err != nil {
		return 0, fmt.Errorf("autoscale: cpu: %w", err)
	}
	idle, total, err := parseProcStat(bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	di, dt := idle, total
	if s.primed && total >= s.total && idle >= s.idle {
		di, dt = idle-s.idle, total-s.total
	}
	s.idle, s.total, s.primed = idle, total, true
	if dt == 0 {
		return 0, nil
	}
	return 1 - float64(di)/float64(dt), nil
}

// parseProcStat reads the aggregate "cpu" line: idle is idle+iowait, total
// the sum of the first eight fields (guest time is already in user).
func parseProcStat(r io.Reader) (idle, total uint64, err error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 5 || f[0] != "cpu" {
			continue
		}
		for i, v := range f[1:min(len(f), 9)] {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("autoscale: cpu: bad /proc/stat field %q", v)
			}
			total += n
			if i == 3 || i == 4 { // idle, iowait
				idle += n
			}
		}
		return idle, total, nil
	}
	if err := sc.Err(); err != nil {
		return 0, 0, fmt.Errorf("autoscale: cpu: %w", err)
	}
	return 0, 0, errors.New("autoscale: cpu: no cpu line in /proc/stat")
}
