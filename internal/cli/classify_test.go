package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
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

// A named path that does not exist is kept, to be reported with the
// others' results rather than to abort them all.
func TestExpandImageArgsKeepsMissingFiles(t *testing.T) {
	dir := t.TempDir()
	ok := filepath.Join(dir, "a.jpg")
	if err := os.WriteFile(ok, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.jpg")
	got, err := expandImageArgs([]string{ok, missing})
	if err != nil || !slices.Equal(got, []string{ok, missing}) {
		t.Errorf("expandImageArgs = %v, %v; want both paths", got, err)
	}
}
