package quality

import (
	"testing"

	"github.com/glimpse-oss/glimpse/internal/analyzer/analyzertest"
)

// BenchmarkAnalyze: see analyzertest.BenchmarkAnalyze.
func BenchmarkAnalyze(b *testing.B) {
	a, err := New(Config{})
	if err != nil {
		b.Fatalf("New: %v", err)
	}
	analyzertest.BenchmarkAnalyze(b, a, workSide)
}
