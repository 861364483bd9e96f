package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The signing key of the default blobs is made once, kept readable by its
// owner only, and read back on the next start; a given --signing-key wins,
// and one too short is refused.
func TestSigningKey(t *testing.T) {
	dir := t.TempDir()
	var f engineFlags
	k1, err := f.signingKeyFor(dir)
	if err != nil || len(k1) < minSigningKey {
		t.Fatalf("first key = %d bytes, %v", len(k1), err)
	}
	st, err := os.Stat(filepath.Join(dir, "signing.key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("signing.key: %v, mode %v; want 0600", err, st.Mode().Perm())
	}
	k2, err := f.signingKeyFor(dir)
	if err != nil || !bytes.Equal(k1, k2) {
		t.Errorf("second start's key differs (%v): URLs handed out before a restart would fail", err)
	}
	f.signingKey = strings.Repeat("s", minSigningKey)
	if k, err := f.signingKeyFor(dir); err != nil || string(k) != f.signingKey {
		t.Errorf("--signing-key: got %q, %v", k, err)
	}
	f.signingKey = "short"
	if _, err := f.signingKeyFor(dir); err == nil || !strings.Contains(err.Error(), "at least") {
		t.Errorf("a short --signing-key: %v; want it refused", err)
	}
	f.signingKey, f.blobURL = "", "file:///elsewhere"
	if k, err := f.signingKeyFor(dir); err != nil || k != nil {
		t.Errorf("explicit blobs without a key: %q, %v; want nil (a random key)", k, err)
	}
}
