package autoscale

import (
	"math"
	"testing"
)

func TestProcStat(t *testing.T) {
	samples := []string{
		"cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2 3 4\n",
		"cpu  200 0 200 1400 200 0 0 0 0 0\n",  // +200 busy, +800 idle
		"cpu  1000 0 200 1400 200 0 0 0 0 0\n", // +800 busy
	}
	i := 0
	s := &ProcStat{Read: func() ([]byte, error) { b := samples[i]; i++; return []byte(b), nil }}
	for _, want := range []float64{0.2, 0.2, 1} {
		got, err := s.Utilisation()
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(got-want) > 1e-9 {
			t.Errorf("sample %d: Utilisation() = %g; want %g", i, got, want)
		}
	}
	bad := &ProcStat{Read: func() ([]byte, error) { return []byte("intr 1 2\n"), nil }}
	if _, err := bad.Utilisation(); err == nil {
		t.Error("Utilisation without a cpu line = nil error; want one")
	}
}
