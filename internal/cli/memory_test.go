package cli

import "testing"

func TestParseMemoryLimit(t *testing.T) {
	tests := []struct {
		in     string
		want   int64
		wantOK bool
	}{
		{"536870912\n", 536870912, true},
		{"max\n", 0, false},                 // cgroup v2 without a limit
		{"9223372036854771712\n", 0, false}, // cgroup v1 without a limit
		{"0", 0, false},
		{"", 0, false},
		{"-1", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseMemoryLimit(tt.in)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("parseMemoryLimit(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}
