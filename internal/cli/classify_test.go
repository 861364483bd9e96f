package cli

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/glimpse-oss/glimpse/internal/job"
)

// The scores of one file line up, however long its labels; a label longer
// than the column is cut with an ellipsis.
func TestPrintClassifiedAligns(t *testing.T) {
	var buf bytes.Buffer
	printClassified(&buf, classified{File: "dog.jpg", Width: 4, Height: 3, Labels: []job.Label{
		{Label: "malamute, malemute, Alaskan malamute", Score: 0.861},
		{Label: "Eskimo dog, husky", Score: 0.048},
		{Label: "tabby", Score: 0.01},
		{Label: strings.Repeat("very long label ", 8), Score: 0.001},
	}})
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")[1:]
	col := -1
	for _, l := range lines {
		i := strings.Index(l, "%")
		if i < 0 {
			t.Fatalf("no score in %q", l)
		}
		if c := utf8.RuneCountInString(l[:i]); col < 0 {
			col = c
		} else if c != col {
			t.Errorf("score column at %d in %q; want %d as in the first line\n%s", c, l, col, buf.String())
		}
	}
	if !strings.Contains(buf.String(), "…") {
		t.Errorf("the long label was not cut:\n%s", buf.String())
	}
}
