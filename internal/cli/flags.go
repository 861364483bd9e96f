package cli

import (
	"fmt"
	"runtime/debug"
	"strconv"
	"strings"
)

// byteSize is a flag value for sizes such as 25MB, 512KiB or 1048576.
type byteSize int64

func (b *byteSize) String() string { return formatBytes(int64(*b)) }
func (b *byteSize) Type() string   { return "size" }
func (b *byteSize) Set(s string) error {
	n, err := parseBytes(s)
	if err != nil {
		return err
	}
	*b = byteSize(n)
	return nil
}

var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30},
	{"kb", 1000}, {"mb", 1000 * 1000}, {"gb", 1000 * 1000 * 1000},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30},
	{"b", 1},
}

func parseBytes(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("size %q: want a number with an optional unit (KB, MB, GB, KiB, MiB, GiB)", s)
	}
	return int64(f * float64(mult)), nil
}

func formatBytes(n int64) string {
	switch {
	case n >= 1000*1000*1000 && n%(1000*1000*1000) == 0:
		return fmt.Sprintf("%dGB", n/(1000*1000*1000))
	case n >= 1000*1000 && n%(1000*1000) == 0:
		return fmt.Sprintf("%dMB", n/(1000*1000))
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return strconv.FormatInt(n, 10)
}

// buildInfo describes the Go toolchain and revision the binary was built from.
func buildInfo() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown build"
	}
	parts := []string{bi.GoVersion}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if len(s.Value) > 12 {
				s.Value = s.Value[:12]
			}
			parts = append(parts, "rev "+s.Value)
		case "-tags":
			if s.Value != "" {
				parts = append(parts, "tags "+s.Value)
			}
		}
	}
	return strings.Join(parts, ", ")
}
