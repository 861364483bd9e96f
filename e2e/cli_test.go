package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// run runs the glimpse binary and returns stdout, stderr and the exit code.
func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(glimpseBin, args...)
	cmd.Dir = ".."
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func TestClassifyCommand(t *testing.T) {
	notImage := filepath.Join(t.TempDir(), "notes.jpg")
	os.WriteFile(notImage, []byte("this is text, not a JPEG"), 0o644)
	stdout, stderr, code := run(t, "classify", "--json", "--top", "3", photo(t, "chelsea.png"), photo(t, "coffee.png"), notImage)
	if code != 1 {
		t.Errorf("exit code = %d; want 1 (one file failed)\n%s", code, stderr)
	}
	want := map[string]string{"chelsea.png": "Egyptian cat", "coffee.png": "espresso"}
	sc := bufio.NewScanner(strings.NewReader(stdout))
	lines := 0
	for sc.Scan() {
		lines++
		var r struct {
			File   string `json:"file"`
			Error  string `json:"error"`
			Labels []struct {
				Label string  `json:"label"`
				Score float64 `json:"score"`
			} `json:"labels"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		base := filepath.Base(r.File)
		if base == "notes.jpg" {
			if r.Error == "" {
				t.Error("text file classified without an error")
			}
			continue
		}
		if len(r.Labels) != 3 || r.Labels[0].Label != want[base] {
			t.Errorf("%s: labels %+v; want 3 with top-1 %q", base, r.Labels, want[base])
		}
	}
	if lines != 3 {
		t.Errorf("%d output lines; want 3", lines)
	}

	// The human format prints ranked labels with percentages.
	stdout, _, code = run(t, "classify", photo(t, "chelsea.png"))
	if code != 0 || !strings.Contains(stdout, "1. Egyptian cat") || !strings.Contains(stdout, "%") {
		t.Errorf("classify chelsea (exit %d):\n%s", code, stdout)
	}
}

func TestHelpAndVersion(t *testing.T) {
	stdout, _, code := run(t, "--help")
	for _, sub := range []string{"serve", "classify", "models", "keys", "version"} {
		if !strings.Contains(stdout, sub) {
			t.Errorf("--help lacks %q:\n%s", sub, stdout)
		}
	}
	if code != 0 {
		t.Errorf("--help exit %d", code)
	}
	if stdout, _, code := run(t, "version"); code != 0 || !strings.HasPrefix(stdout, "glimpse ") {
		t.Errorf("version = %q (exit %d)", stdout, code)
	}
	if stdout, stderr, code := run(t, "models", "verify"); code != 0 || !strings.Contains(stdout, "inference ok") {
		t.Errorf("models verify (exit %d): %s %s", code, stdout, stderr)
	}
	if _, stderr, code := run(t, "serve", "--models", t.TempDir()); code == 0 || !strings.Contains(stderr, "model") {
		t.Errorf("serve with an empty model dir: exit %d, %q; want a clear error about the model", code, stderr)
	}
}

// Keys map to tenants; every read is scoped to the key's tenant.
func TestKeysAndTenants(t *testing.T) {
	dir := t.TempDir()
	keyA, _, code := run(t, "keys", "create", "--data", dir, "--tenant", "acme", "--name", "a")
	keyB, _, code2 := run(t, "keys", "create", "--data", dir, "--tenant", "globex")
	keyA, keyB = strings.TrimSpace(keyA), strings.TrimSpace(keyB)
	if code != 0 || code2 != 0 || !strings.HasPrefix(keyA, "glk_") {
		t.Fatalf("keys create: %q %q (exit %d %d)", keyA, keyB, code, code2)
	}
	s := startServe(t, dir, "--workers", "1", "--require-keys")
	img := noiseJPEG(t, 64, 64, 77)

	send := func(key string) (*http.Response, imageView) {
		req, _ := http.NewRequest("POST", s.URL+"/v1/images", bytes.NewReader(img))
		req.Header.Set("Content-Type", "image/jpeg")
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		var v imageView
		resp := do(t, req, nil)
		if resp.StatusCode < 300 {
			json.NewDecoder(resp.Body).Decode(&v)
		}
		return resp, v
	}
	if resp, _ := send(""); resp.StatusCode != 401 {
		t.Errorf("no key = %d; want 401", resp.StatusCode)
	}
	if resp, _ := send("glk_wrong"); resp.StatusCode != 401 {
		t.Errorf("bad key = %d; want 401", resp.StatusCode)
	}
	resp, a := send(keyA)
	if resp.StatusCode != 202 {
		t.Fatalf("acme upload = %d; want 202", resp.StatusCode)
	}
	// The other tenant can neither see acme's image nor its bytes; its own
	// upload of the same bytes is its own image.
	for _, path := range []string{"/v1/images/" + a.ID, "/v1/images/" + a.ID + "/content"} {
		req, _ := http.NewRequest("GET", s.URL+path, nil)
		req.Header.Set("X-API-Key", keyB)
		if resp := do(t, req, nil); resp.StatusCode != 404 {
			t.Errorf("globex GET %s = %d; want 404", path, resp.StatusCode)
		}
	}
	if _, b := send(keyB); b.ID == a.ID || b.ID == "" {
		t.Errorf("globex's upload of the same bytes got id %q; want its own, not %q", b.ID, a.ID)
	}
	out, _, _ := run(t, "keys", "list", "--data", dir)
	if strings.Contains(out, keyA) || !strings.Contains(out, "acme") {
		t.Errorf("keys list shows secrets or lacks tenants:\n%s", out)
	}
}
