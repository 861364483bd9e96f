package models

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// EnvModels names the environment variable holding a model directory to
// search first.
const EnvModels = "GLIMPSE_MODELS"

// Model is a located and verified model, ready to be loaded.
type Model struct {
	// Spec describes the model; Default unless Dir holds a model.json.
	Spec Spec
	// Dir is the directory the model was found in; Path and LabelsPath are
	// Spec.File and Spec.Labels inside it.
	Dir, Path, LabelsPath string
	// Labels holds the class names, one per output index.
	Labels []string
}

// Locate finds and verifies a model.
//
// With dir == "" it searches, in order: $GLIMPSE_MODELS; ./models;
// shared/models in the working directory and each of its ancestors; the
// executable's directory, its models subdirectory, and shared/models next to
// it and next to each of its ancestors. The first directory that holds the
// model file wins. With dir != "" only dir is looked at.
//
// A directory may hold a model.json (a Spec as JSON) describing a custom
// model; otherwise Default() is expected. The SHA-256 of the model and of the
// labels file must be among those the spec accepts: a mismatch is refused
// with ErrDigestMismatch rather than skipped. When nothing is found the error
// wraps ErrNotFound and lists where it looked and how to get the model.
func Locate(dir string) (*Model, error) {
	dirs := []string{dir}
	if dir == "" {
		dirs = searchDirs()
	}
	var looked []string
	for _, d := range dirs {
		m, err := locateIn(d)
		if errors.Is(err, fs.ErrNotExist) {
			looked = append(looked, d)
			continue
		}
		return m, err
	}
	return nil, fmt.Errorf("%w: no model (%s or a %s) in any of: %s. Get the default model with `glimpse models fetch` or `make setup`, or name a directory with $%s",
		ErrNotFound, Default().File, SpecFile, strings.Join(looked, ", "), EnvModels)
}

// locateIn loads and verifies the model in dir. It returns an error matching
// fs.ErrNotExist when dir holds no model file (so the search goes on), and
// any other error when a model is there but unusable.
func locateIn(dir string) (*Model, error) {
	spec := Default()
	specPath := filepath.Join(dir, SpecFile)
	if _, err := os.Stat(specPath); err == nil {
		if spec, err = ReadSpec(specPath); err != nil {
			return nil, err
		}
	}
	m := &Model{
		Spec:       spec,
		Dir:        dir,
		Path:       filepath.Join(dir, spec.File),
		LabelsPath: filepath.Join(dir, spec.Labels),
	}
	if fi, err := os.Stat(m.Path); err != nil || fi.IsDir() {
		return nil, fs.ErrNotExist
	}
	if err := verifyFile(m.Path, spec.SHA256); err != nil {
		return nil, err
	}
	if _, err := os.Stat(m.LabelsPath); err != nil {
		return nil, fmt.Errorf("models: %s has the model but not its labels file: %w", dir, err)
	}
	if err := verifyFile(m.LabelsPath, spec.LabelsSHA256); err != nil {
		return nil, err
	}
	labels, err := readLabels(m.LabelsPath)
	if err != nil {
		return nil, err
	}
	m.Labels = labels
	return m, nil
}

// readLabels reads one class name per line, ignoring a final newline and
// carriage returns.
func readLabels(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("models: %w", err)
	}
	s := strings.TrimSuffix(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n")
	if s == "" {
		return nil, fmt.Errorf("%w: labels file %s is empty", ErrInvalidSpec, path)
	}
	return strings.Split(s, "\n"), nil
}

// searchDirs lists the directories Locate searches when given none, without
// duplicates.
func searchDirs() []string {
	var dirs []string
	seen := map[string]bool{}
	add := func(d string) {
		if d == "" {
			return
		}
		if abs, err := filepath.Abs(d); err == nil {
			d = abs
		}
		if !seen[d] {
			seen[d] = true
			dirs = append(dirs, d)
		}
	}
	add(os.Getenv(EnvModels))
	if wd, err := os.Getwd(); err == nil {
		add(filepath.Join(wd, "models"))
		for _, a := range ancestors(wd) {
			add(filepath.Join(a, "shared", "models"))
		}
	}
	if exe := exeDir(); exe != "" {
		add(exe)
		add(filepath.Join(exe, "models"))
		for _, a := range ancestors(exe) {
			add(filepath.Join(a, "shared", "models"))
		}
	}
	return dirs
}

// ancestors returns dir and each of its parents up to the root.
func ancestors(dir string) []string {
	var out []string
	for {
		out = append(out, dir)
		parent := filepath.Dir(dir)
		if parent == dir {
			return out
		}
		dir = parent
	}
}

// exeDir returns the directory of the running executable, symlinks resolved,
// or "" if it cannot be found.
func exeDir() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		exe = r
	}
	return filepath.Dir(exe)
}
