package models

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// digestKey identifies one version of a file well enough to reuse its
// digest: a rewrite changes the size or the modification time.
type digestKey struct {
	path  string
	size  int64
	mtime time.Time
}

// digestCache remembers the SHA-256 of files already hashed in this process,
// so that each worker's Locate does not re-read the model.
var digestCache struct {
	sync.Mutex
	m map[digestKey]string
}

// fileDigest returns the lowercase hex SHA-256 of the file at path, streaming
// it, and caches the result by path, size and modification time.
func fileDigest(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("models: %w", err)
	}
	f, err := os.Open(abs)
	if err != nil {
		return "", fmt.Errorf("models: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("models: %w", err)
	}
	key := digestKey{abs, fi.Size(), fi.ModTime()}
	digestCache.Lock()
	d, ok := digestCache.m[key]
	digestCache.Unlock()
	if ok {
		return d, nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("models: reading %s: %w", abs, err)
	}
	d = hex.EncodeToString(h.Sum(nil))
	digestCache.Lock()
	if digestCache.m == nil {
		digestCache.m = make(map[digestKey]string)
	}
	digestCache.m[key] = d
	digestCache.Unlock()
	return d, nil
}

// verifyFile checks that the file at path has one of the accepted digests.
// A mismatch wraps ErrDigestMismatch and names the file, the digest found and
// the accepted ones.
func verifyFile(path string, accepted []string) error {
	d, err := fileDigest(path)
	if err != nil {
		return err
	}
	return checkDigest(path, d, accepted)
}

// checkDigest compares a computed digest with the accepted ones.
func checkDigest(path, got string, accepted []string) error {
	if slices.Contains(accepted, got) {
		return nil
	}
	return fmt.Errorf("%w: %s has SHA-256 %s; accepted: %s. The file is corrupt or a different version: delete it and run `glimpse models fetch`",
		ErrDigestMismatch, path, got, strings.Join(accepted, ", "))
}
