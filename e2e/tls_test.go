package e2e

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// startServeHTTPS starts `glimpse serve` with args (which ask for TLS) and
// returns it with its banner, once it prints its URL. Readiness is the
// caller's to check: only the caller knows which certificate to trust.
func startServeHTTPS(t *testing.T, dir string, args ...string) (*server, string) {
	t.Helper()
	all := append([]string{"serve", "--addr", "127.0.0.1:0", "--data", dir, "--workers", "1"}, args...)
	cmd := exec.Command(glimpseBin, all...)
	cmd.Dir = ".."
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, cmd: cmd, Data: dir, logs: &logBuf{}, done: make(chan error, 1)}
	cmd.Stderr = s.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	banner := &logBuf{}
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(banner, line)
			if i := strings.Index(line, "running at "); i >= 0 {
				urlc <- strings.TrimSpace(line[i+len("running at "):])
			}
		}
	}()
	go func() { s.done <- cmd.Wait() }()
	select {
	case s.URL = <-urlc:
	case err := <-s.done:
		t.Fatalf("serve exited before it was ready: %v\n%s", err, s.logs)
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("serve printed no URL in 2 minutes\n%s", s.logs)
	}
	t.Cleanup(func() { s.stop() })
	// The banner's lines after the URL are printed at once with it.
	checkFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if !strings.Contains(banner.String(), "try ") {
			return errors.New("banner incomplete")
		}
		return nil
	})
	return s, banner.String()
}

// trusting is an HTTPS client that trusts the certificates in pemFile.
func trusting(t *testing.T, pemFile string) *http.Client {
	t.Helper()
	b, err := os.ReadFile(pemFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("no certificate in %s", pemFile)
	}
	return &http.Client{
		Timeout:   90 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}
}

// waitReady polls /readyz with client.
func waitReady(t *testing.T, client *http.Client, base string) {
	t.Helper()
	checkFor(t, time.Minute, 50*time.Millisecond, func() error {
		resp, err := client.Get(base + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("readyz: %d", resp.StatusCode)
		}
		return nil
	})
}

var fingerprintRE = regexp.MustCompile(`SHA-256 ([0-9A-F]{2}(?::[0-9A-F]{2}){31})`)

func colonHex(der []byte) string {
	sum := sha256.Sum256(der)
	var parts []string
	for _, c := range sum {
		parts = append(parts, fmt.Sprintf("%02X", c))
	}
	return strings.Join(parts, ":")
}

// TestTLSSelfSigned: serve --tls self-signed answers HTTPS to a client that
// trusts DATA/tls/cert.pem, refuses the handshake to one that does not, names
// 127.0.0.1 in the certificate, prints its fingerprint, and reuses the same
// certificate after a restart. --tls-cert/--tls-key serve a given one.
func TestTLSSelfSigned(t *testing.T) {
	dir := t.TempDir()
	s, banner := startServeHTTPS(t, dir, "--tls", "self-signed")
	if !strings.HasPrefix(s.URL, "https://127.0.0.1:") {
		t.Fatalf("banner URL = %q; want https://127.0.0.1:…\n%s", s.URL, banner)
	}
	certFile := filepath.Join(dir, "tls", "cert.pem")
	client := trusting(t, certFile)
	waitReady(t, client, s.URL)

	resp, err := client.Get(s.URL + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz over HTTPS with the cert trusted: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Fatalf("GET /healthz = %d (TLS %v); want 200 over TLS", resp.StatusCode, resp.TLS != nil)
	}
	leaf := resp.TLS.PeerCertificates[0]
	hasLoopback := false
	for _, ip := range leaf.IPAddresses {
		hasLoopback = hasLoopback || ip.Equal(net.IPv4(127, 0, 0, 1))
	}
	if !hasLoopback || leaf.IsCA || leaf.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("certificate: IPs %v, DNS %v, CA %v, key %v; want an ECDSA server certificate naming 127.0.0.1",
			leaf.IPAddresses, leaf.DNSNames, leaf.IsCA, leaf.PublicKeyAlgorithm)
	}
	m := fingerprintRE.FindStringSubmatch(banner)
	if m == nil || m[1] != colonHex(leaf.Raw) {
		t.Errorf("banner fingerprint %v; want the served certificate's %s\n%s", m, colonHex(leaf.Raw), banner)
	}
	t.Logf("banner:\n%s", banner)

	// Without the certificate trusted, verification fails.
	plain := &http.Client{Timeout: 10 * time.Second}
	if resp, err := plain.Get(s.URL + "/healthz"); err == nil {
		resp.Body.Close()
		t.Errorf("a client that does not trust the certificate got %d; want a verification error", resp.StatusCode)
	} else if !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusted client: %v; want a certificate verification error", err)
	}

	// Uploads work over HTTPS, and pre-signed URLs come back as https.
	jpg := noiseJPEG(t, 96, 64, 4242)
	req, _ := http.NewRequest("POST", s.URL+"/v1/images?wait=60s", bytes.NewReader(jpg))
	req.Header.Set("Content-Type", "image/jpeg")
	var v imageView
	if resp := doWith(t, client, req, &v); resp.StatusCode != 200 || v.Status != "done" {
		t.Fatalf("upload over HTTPS = %d %q; want 200 done", resp.StatusCode, v.Status)
	}
	jpg2 := noiseJPEG(t, 96, 64, 4343)
	body := fmt.Sprintf(`{"filename":"tls.jpg","content_type":"image/jpeg","size":%d}`, len(jpg2))
	req, _ = http.NewRequest("POST", s.URL+"/v1/uploads", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	var tk uploadTicket
	if resp := doWith(t, client, req, &tk); resp.StatusCode != 201 || !strings.HasPrefix(tk.UploadURL, "https://") {
		t.Fatalf("POST /v1/uploads over HTTPS = %d, upload_url %q; want 201 and an https URL", resp.StatusCode, tk.UploadURL)
	}
	req, _ = http.NewRequest("PUT", tk.UploadURL, bytes.NewReader(jpg2))
	req.Header.Set("Content-Type", "image/jpeg")
	if resp := doWith(t, client, req, nil); resp.StatusCode != 202 {
		t.Errorf("PUT to the pre-signed https URL = %d; want 202", resp.StatusCode)
	}

	// A restart keeps the certificate: devices that trust it keep working.
	before, _ := os.ReadFile(certFile)
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	s2, banner2 := startServeHTTPS(t, dir, "--tls", "self-signed")
	waitReady(t, client, s2.URL)
	after, _ := os.ReadFile(certFile)
	m2 := fingerprintRE.FindStringSubmatch(banner2)
	if !bytes.Equal(before, after) || m2 == nil || m2[1] != m[1] {
		t.Errorf("restart made a new certificate (file same: %v, fingerprints %v and %v); want the same one",
			bytes.Equal(before, after), m, m2)
	}
	if err := s2.stop(); err != nil {
		t.Fatal(err)
	}

	// --tls-cert and --tls-key serve a certificate the user has.
	s3, banner3 := startServeHTTPS(t, t.TempDir(), "--tls-cert", certFile, "--tls-key", filepath.Join(dir, "tls", "key.pem"))
	waitReady(t, client, s3.URL)
	if !strings.HasPrefix(s3.URL, "https://") || !strings.Contains(banner3, m[1]) {
		t.Errorf("--tls-cert: URL %q, banner lacks the fingerprint:\n%s", s3.URL, banner3)
	}
}

// doWith is do with a given client.
func doWith(t *testing.T, client *http.Client, req *http.Request, out any) *http.Response {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	if out != nil && buf.Len() > 0 {
		if err := json.Unmarshal(buf.Bytes(), out); err != nil {
			t.Fatalf("%s %s: %d: decoding %q: %v", req.Method, req.URL, resp.StatusCode, buf.Bytes(), err)
		}
	}
	return resp
}

// TestTLSFlagErrors: contradictory or incomplete TLS flags are refused
// before anything starts.
func TestTLSFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--tls", "lets-encrypt"},
		{"--tls-cert", "x.pem"},
		{"--tls", "self-signed", "--tls-cert", "x.pem", "--tls-key", "y.pem"},
	} {
		all := append([]string{"api", "--addr", "127.0.0.1:0", "--data", t.TempDir()}, args...)
		_, stderr, code := run(t, all...)
		if code == 0 || !strings.Contains(stderr, "tls") {
			t.Errorf("glimpse %v: exit %d, %q; want a failure naming the TLS flags", args, code, stderr)
		}
	}
}
