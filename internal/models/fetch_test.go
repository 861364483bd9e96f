package models

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestFetchRemovesBadDownload(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("not the model"))
	}))
	defer srv.Close()
	dest := t.TempDir()
	_, err := fetch(context.Background(), dest, nil, nil, srv.Client(), srv.URL+"/model.onnx", srv.URL+"/labels.tgz")
	if !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("got error %v, want %v", err, ErrDigestMismatch)
	}
	entries, _ := os.ReadDir(dest)
	if len(entries) != 0 {
		t.Errorf("got %d files left in %s, want none", len(entries), dest)
	}
	if _, err := os.Stat(filepath.Join(dest, Default().File)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("bad download kept: %v", err)
	}
}

func TestParseLabelsJS(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		want    []string
		wantErr bool
	}{
		{"plain", `exports.IMAGENET_CLASSES = { 0: 'tench', 1: 'goldfish, Carassius auratus' };`, []string{"tench", "goldfish, Carassius auratus"}, false},
		{"concat and escape", "x.IMAGENET_CLASSES = {\n    0: 'a, ' +\n        'b',\n    1: 'jack-o\\'-lantern',\n};", []string{"a, b", "jack-o'-lantern"}, false},
		{"out of order", `IMAGENET_CLASSES = { 1: 'a' }`, nil, true},
		{"unterminated", `IMAGENET_CLASSES = { 0: 'a }`, nil, true},
		{"no marker", `var x = 1`, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseLabelsJS([]byte(tt.src))
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidSpec) {
					t.Errorf("got %q, %v; want %v", got, err, ErrInvalidSpec)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
