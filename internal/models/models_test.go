package models

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sharedDir returns the shared models directory, skipping (or failing with
// GLIMPSE_STRICT_TESTS=1) when it is missing.
func sharedDir(t *testing.T) string {
	t.Helper()
	wd, _ := os.Getwd()
	for _, a := range ancestors(wd) {
		d := filepath.Join(a, "shared", "models")
		if _, err := os.Stat(filepath.Join(d, Default().File)); err == nil {
			return d
		}
	}
	if os.Getenv("GLIMPSE_STRICT_TESTS") == "1" {
		t.Fatal("shared/models not found")
	}
	t.Skip("shared/models not found")
	return ""
}

// copyFile copies src to dst, changing byte flip (if >= 0).
func copyFile(t *testing.T, src, dst string, flip int) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if flip >= 0 {
		b[flip] ^= 0xff
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLocateShared(t *testing.T) {
	shared := sharedDir(t)
	tests := []struct {
		name string
		dir  string
		env  string
	}{
		{"explicit", shared, ""},
		{"search", "", ""},
		{"env", "", shared},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvModels, tt.env)
			m, err := Locate(tt.dir)
			if err != nil {
				t.Fatalf("Locate: %v", err)
			}
			if len(m.Labels) != 1000 {
				t.Errorf("got %d labels, want 1000", len(m.Labels))
			}
			if got := m.Labels[285]; got != "Egyptian cat" {
				t.Errorf("label 285 is %q, want %q", got, "Egyptian cat")
			}
			if m.Spec.Name != Default().Name || filepath.Base(m.Path) != Default().File {
				t.Errorf("got model %s at %s, want the default", m.Spec.Name, m.Path)
			}
		})
	}
}

func TestLocateRefusesCorruptCopy(t *testing.T) {
	shared := sharedDir(t)
	spec := Default()
	tests := []struct {
		name                 string
		flipModel, flipLabel int
		wantFile             string
	}{
		{"model", 1000, -1, spec.File},
		{"labels", -1, 3, spec.Labels},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			copyFile(t, filepath.Join(shared, spec.File), filepath.Join(dir, spec.File), tt.flipModel)
			copyFile(t, filepath.Join(shared, spec.Labels), filepath.Join(dir, spec.Labels), tt.flipLabel)
			_, err := Locate(dir)
			if !errors.Is(err, ErrDigestMismatch) {
				t.Fatalf("got error %v, want %v", err, ErrDigestMismatch)
			}
			accepted := spec.SHA256[0]
			if tt.wantFile == spec.Labels {
				accepted = spec.LabelsSHA256[0]
			}
			for _, want := range []string{tt.wantFile, accepted, "glimpse models fetch"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}

func TestLocateMissing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nothing-here")
	_, err := Locate(dir)
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("got error %v, want %v", err, ErrNotFound)
	}
	for _, want := range []string{dir, "glimpse models fetch", "make setup"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestLocateCustomSpec(t *testing.T) {
	shared := sharedDir(t)
	custom := Default()
	custom.Name = "renamed"
	custom.File = "net.onnx"
	custom.Labels = "classes.txt"
	custom.Layout = ""
	dir := t.TempDir()
	copyFile(t, filepath.Join(shared, Default().File), filepath.Join(dir, custom.File), -1)
	copyFile(t, filepath.Join(shared, Default().Labels), filepath.Join(dir, custom.Labels), -1)
	b, _ := json.Marshal(custom)
	if err := os.WriteFile(filepath.Join(dir, SpecFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := Locate(dir)
	if err != nil {
		t.Fatalf("Locate: %v", err)
	}
	if m.Spec.Name != "renamed" || m.Path != filepath.Join(dir, "net.onnx") || m.Spec.Layout != LayoutNCHW {
		t.Errorf("got spec %+v at %s, want the custom one with layout NCHW", m.Spec, m.Path)
	}
}

func TestReadSpec(t *testing.T) {
	valid := `{"name":"x","file":"x.onnx","sha256":["` + strings.Repeat("a", 64) + `"],
		"labels":"x.txt","labels_sha256":["` + strings.Repeat("b", 64) + `"],
		"input":"in","output":"out","size":299,"resize_shorter":342,
		"mean":[0.5,0.5,0.5],"std":[0.5,0.5,0.5],"layout":"NHWC","softmax":false}`
	tests := []struct {
		name    string
		json    string
		wantErr string // "" for success
	}{
		{"valid", valid, ""},
		{"unknown field", strings.Replace(valid, `"softmax"`, `"sofmax"`, 1), "unknown field"},
		{"not json", `{`, "invalid spec"},
		{"escaping file", strings.Replace(valid, `"x.onnx"`, `"../x.onnx"`, 1), "inside the model directory"},
		{"no digest", strings.Replace(valid, `["`+strings.Repeat("a", 64)+`"]`, `[]`, 1), "no accepted digest"},
		{"short digest", strings.Replace(valid, strings.Repeat("a", 64), "abc", 1), "64 lowercase hex"},
		{"zero std", strings.Replace(valid, `"std":[0.5,0.5,0.5]`, `"std":[0.5,0,0.5]`, 1), "std[1]"},
		{"resize below size", strings.Replace(valid, `342`, `100`, 1), "resize_shorter"},
		{"bad layout", strings.Replace(valid, `"NHWC"`, `"CHW"`, 1), "layout"},
		{"no size", strings.Replace(valid, `"size":299`, `"size":0`, 1), "size 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), SpecFile)
			if err := os.WriteFile(p, []byte(tt.json), 0o644); err != nil {
				t.Fatal(err)
			}
			s, err := ReadSpec(p)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ReadSpec: %v", err)
				}
				if s.Size != 299 || s.ResizeSide() != 342 || s.Layout != LayoutNHWC {
					t.Errorf("got %+v, want size 299, resize 342, NHWC", s)
				}
				return
			}
			if !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got error %v, want %v mentioning %q", err, ErrInvalidSpec, tt.wantErr)
			}
		})
	}
	if err := Default().Validate(); err != nil {
		t.Errorf("Default().Validate() = %v, want nil", err)
	}
}

func TestFindRuntime(t *testing.T) {
	dir := t.TempDir()
	lib := filepath.Join(dir, RuntimeLib)
	if err := os.WriteFile(lib, []byte("not really"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		name, explicit, env string
		want                string // "" means ErrNotFound
	}{
		{"env file", "", lib, lib},
		{"env dir", "", dir, lib},
		{"explicit beats env", lib, missing, lib},
		{"explicit missing", missing, lib, ""},
		{"env missing", "", missing, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvRuntime, tt.env)
			got, err := FindRuntime(tt.explicit)
			if tt.want == "" {
				if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "make setup") {
					t.Errorf("got %q, %v; want %v naming %s and make setup", got, err, ErrNotFound, missing)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestFetchFromShared(t *testing.T) {
	sharedDir(t)
	dest := filepath.Join(t.TempDir(), "models")
	var progress strings.Builder
	m, err := Fetch(context.Background(), dest, &progress)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if m.Dir != dest || len(m.Labels) != 1000 {
		t.Errorf("got model in %s with %d labels, want %s with 1000", m.Dir, len(m.Labels), dest)
	}
	if !strings.Contains(progress.String(), "copying") {
		t.Errorf("progress %q does not mention copying", progress.String())
	}
	// A second Fetch finds the files in place.
	if _, err := Fetch(context.Background(), dest, nil); err != nil {
		t.Errorf("second Fetch: %v", err)
	}
}

func TestFetchRuntimeNetwork(t *testing.T) {
	if os.Getenv("GLIMPSE_NETWORK_TESTS") != "1" {
		t.Skip("set GLIMPSE_NETWORK_TESTS=1 to run npm pack")
	}
	p, err := FetchRuntime(context.Background(), t.TempDir(), nil)
	if err != nil {
		t.Fatalf("FetchRuntime: %v", err)
	}
	if err := verifyFile(p, []string{RuntimeSHA256}); err != nil {
		t.Error(err)
	}
}
