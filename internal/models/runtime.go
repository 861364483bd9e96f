package models

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// Facts about the ONNX Runtime build Glimpse uses.
const (
	// RuntimeLib is the file name of the ONNX Runtime shared library.
	RuntimeLib = "libonnxruntime.so.1"
	// RuntimeVersion is the ONNX Runtime release Glimpse is built against
	// (C API version 24).
	RuntimeVersion = "1.24.1"
	// RuntimeNPMPackage is the npm package FetchRuntime takes the library
	// from; npm ships ONNX Runtime's official Linux build inside it.
	RuntimeNPMPackage = "onnxruntime-node@" + RuntimeVersion
	// runtimeTarPath is the library's path inside the npm tarball.
	runtimeTarPath = "package/bin/napi-v6/linux/x64/" + RuntimeLib
	// EnvRuntime names the environment variable holding the library's path
	// (or its directory).
	EnvRuntime = "GLIMPSE_ORT_LIB"
)

// RuntimeSHA256 is the digest of RuntimeLib in RuntimeNPMPackage for
// linux/amd64. FetchRuntime refuses anything else.
const RuntimeSHA256 = "53ef1ac028dd1b05554b8da28d9159eb3876f99868193d2aaa6e67f0243c23d4"

// FindRuntime finds the ONNX Runtime shared library and returns its absolute
// path. explicit, when not empty, is the only place looked at (a file, or a
// directory holding RuntimeLib); next $GLIMPSE_ORT_LIB is, likewise. Otherwise
// it searches the executable's directory, .deps/onnxruntime next to the
// executable and its parent, and .deps/onnxruntime in the working directory
// and each of its ancestors. When nothing is found the error wraps ErrNotFound
// and lists where it looked.
func FindRuntime(explicit string) (string, error) {
	var dirs []string
	switch env := os.Getenv(EnvRuntime); {
	case explicit != "":
		dirs = []string{explicit}
	case env != "":
		dirs = []string{env}
	default:
		dirs = runtimeDirs()
	}
	for _, d := range dirs {
		p := d
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			p = filepath.Join(p, RuntimeLib)
		}
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return filepath.Abs(p)
		}
	}
	return "", fmt.Errorf("%w: no ONNX Runtime library (%s) in any of: %s. Install it with `make setup` or `glimpse models fetch`, or set $%s",
		ErrNotFound, RuntimeLib, strings.Join(dirs, ", "), EnvRuntime)
}

// runtimeDirs lists the directories FindRuntime searches by default.
func runtimeDirs() []string {
	var dirs []string
	if exe := exeDir(); exe != "" {
		dirs = append(dirs, exe,
			filepath.Join(exe, ".deps", "onnxruntime"),
			filepath.Join(exe, "..", ".deps", "onnxruntime"))
	}
	if wd, err := os.Getwd(); err == nil {
		for _, a := range ancestors(wd) {
			dirs = append(dirs, filepath.Join(a, ".deps", "onnxruntime"))
		}
	}
	for i, d := range dirs {
		dirs[i] = filepath.Clean(d)
	}
	return dirs
}

// FetchRuntime installs RuntimeLib into destDir and returns its path. It runs
// `npm pack onnxruntime-node@1.24.1` in a temporary directory (never
// `npm install`, whose postinstall script downloads more and fails offline)
// and extracts the library from the tarball, checking RuntimeSHA256. Only
// linux/amd64 is supported; other platforms get ErrUnsupportedPlatform.
// Progress messages go to progress, which may be nil.
func FetchRuntime(ctx context.Context, destDir string, progress io.Writer) (string, error) {
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		return "", fmt.Errorf("%w: no ONNX Runtime build for %s/%s; install ONNX Runtime %s yourself and set $%s",
			ErrUnsupportedPlatform, runtime.GOOS, runtime.GOARCH, RuntimeVersion, EnvRuntime)
	}
	if progress == nil {
		progress = io.Discard
	}
	dest := filepath.Join(destDir, RuntimeLib)
	if verifyFile(dest, []string{RuntimeSHA256}) == nil {
		fmt.Fprintf(progress, "%s is already installed\n", dest)
		return filepath.Abs(dest)
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return "", fmt.Errorf("models: fetching ONNX Runtime needs npm (Debian: apt-get install npm): %w", err)
	}
	tmp, err := os.MkdirTemp("", "glimpse-ort-")
	if err != nil {
		return "", fmt.Errorf("models: %w", err)
	}
	defer os.RemoveAll(tmp)
	fmt.Fprintf(progress, "fetching ONNX Runtime %s (npm pack %s)\n", RuntimeVersion, RuntimeNPMPackage)
	cmd := exec.CommandContext(ctx, npm, "pack", "--silent", RuntimeNPMPackage)
	cmd.Dir = tmp
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("models: npm pack %s: %w: %s", RuntimeNPMPackage, err, strings.TrimSpace(stderr.String()))
	}
	tgz := filepath.Join(tmp, strings.TrimSpace(lastLine(string(out))))
	if err := os.MkdirAll(destDir, 0o755); err != nil {
		return "", fmt.Errorf("models: %w", err)
	}
	if err := extractVerified(tgz, runtimeTarPath, dest, RuntimeSHA256, 0o755); err != nil {
		return "", err
	}
	fmt.Fprintf(progress, "installed %s\n", dest)
	return filepath.Abs(dest)
}

// lastLine returns the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// extractVerified copies the member name of the gzipped tarball tgz to dest
// (through a temporary file, renamed into place only if its SHA-256 is want).
func extractVerified(tgz, name, dest, want string, perm os.FileMode) error {
	f, err := os.Open(tgz)
	if err != nil {
		return fmt.Errorf("models: %w", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("models: %s: %w", tgz, err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: %s holds no %s", ErrNotFound, tgz, name)
		}
		if err != nil {
			return fmt.Errorf("models: %s: %w", tgz, err)
		}
		if h.Name == name && h.Typeflag == tar.TypeReg {
			return writeVerified(tr, dest, []string{want}, perm)
		}
	}
}

// writeVerified streams r into dest through a temporary file in the same
// directory, hashing as it goes, and renames it into place only when the
// digest is accepted; otherwise the temporary file is removed.
func writeVerified(r io.Reader, dest string, accepted []string, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".*.tmp")
	if err != nil {
		return fmt.Errorf("models: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(tmp, h), r)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("models: writing %s: %w", dest, err)
	}
	if err := checkDigest(dest, hex.EncodeToString(h.Sum(nil)), accepted); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), perm); err != nil {
		return fmt.Errorf("models: %w", err)
	}
	if err := os.Rename(tmp.Name(), dest); err != nil {
		return fmt.Errorf("models: %w", err)
	}
	return nil
}
