package colors

import (
	"testing"

	"github.com/glimpse-oss/glimpse/internal/analyzer/analyzertest"
)

// BenchmarkAnalyze: see analyzertest.BenchmarkAnalyze.
func BenchmarkAnalyze(b *testing.B) {
	a := New()
	analyzertest.BenchmarkAnalyze(b, a, workSide)
}
