package blobstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Credentials and bucket of the versitygw the tests start.
const (
	testAccessKey = "glimpse-test-access"
	testSecretKey = "glimpse-test-secret-key-0123456789"
	testBucket    = "glimpse-test"
)

const versityInstall = "run scripts/setup.sh, or: GOBIN=$PWD/.deps/bin go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// findTool looks for name in .deps/bin of the working directory or any
// parent, then on $PATH.
func findTool(name string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, ".deps", "bin", name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return exec.LookPath(name)
}

// startVersityGW starts a versitygw S3 server (posix backend in a temp dir,
// on a random loopback port), creates testBucket, points the AWS SDK's
// environment credentials at it, and returns the bucket's s3:// URL. The
// server stops when the test ends. Without the binary the test is skipped,
// or fails under GLIMPSE_STRICT_TESTS=1.
func startVersityGW(t *testing.T) string {
	t.Helper()
	bin, err := findTool("versitygw")
	if err != nil {
		msg := "versitygw not found in .deps/bin or $PATH; " + versityInstall
		if os.Getenv("GLIMPSE_STRICT_TESTS") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	// Only the environment's credentials: no shared files, no IMDS.
	t.Setenv("AWS_ACCESS_KEY_ID", testAccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", testSecretKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")

	root := t.TempDir()
	var addr string
	// A port picked free can be taken before versitygw binds it: retry.
	for attempt := 0; ; attempt++ {
		addr = freeAddr(t)
		err := runVersityGW(t, bin, addr, root)
		if err == nil {
			break
		}
		if attempt == 2 {
			t.Fatalf("start versitygw: %v", err)
		}
		t.Logf("start versitygw on %s: %v; retrying", addr, err)
	}

	u := fmt.Sprintf("s3://%s?endpoint=http://%s&region=us-east-1&use_path_style=true", testBucket, addr)
	s, err := Open(context.Background(), u)
	if err != nil {
		t.Fatalf("Open(%q): %v", u, err)
	}
	defer s.Close()
	var c *s3.Client
	if !s.b.As(&c) {
		t.Fatal("s3 store does not expose *s3.Client")
	}
	if _, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(testBucket)}); err != nil {
		t.Fatalf("create bucket %s: %v", testBucket, err)
	}
	return u
}

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer ln.Close()
	return "127.0.0.1:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// runVersityGW starts versitygw on addr and waits until it accepts
// connections; the process is stopped in t.Cleanup.
func runVersityGW(t *testing.T, bin, addr, root string) error {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "versitygw.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "--access", testAccessKey, "--secret", testSecretKey, "--port", addr, "posix", root)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		cmd.Process.Kill()
		<-exited
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-exited:
			out, _ := os.ReadFile(logPath)
			return fmt.Errorf("versitygw exited: %v\n%s", err, out)
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			t.Cleanup(stop)
			return nil
		}
		if time.Now().After(deadline) {
			stop()
			return errors.New("versitygw did not accept connections within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPublicURL: with Config.PublicURL the store signs URLs for the
// endpoint clients reach (here "localhost" for a server Glimpse reaches as
// 127.0.0.1), a PUT to such a URL lands in the bucket, and SignedOrigin
// names that endpoint for a browser's connect-src.
func TestPublicURL(t *testing.T) {
	ctx := context.Background()
	inner := startVersityGW(t)
	public := strings.Replace(inner, "http://127.0.0.1:", "http://localhost:", 1)
	if public == inner {
		t.Fatalf("versitygw URL %q is not on 127.0.0.1", inner)
	}
	s, err := OpenConfig(ctx, inner, Config{PublicURL: public})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	u, _ := url.Parse(public)
	ep, _ := url.Parse(u.Query().Get("endpoint"))
	if got := s.SignedOrigin(); got != "http://"+ep.Host {
		t.Errorf("SignedOrigin = %q; want http://%s", got, ep.Host)
	}
	signed, err := s.SignURL(ctx, "uploads/pub", SignOptions{Method: http.MethodPut, Expiry: time.Minute, ContentType: "image/png"})
	if err != nil {
		t.Fatal(err)
	}
	su, _ := url.Parse(signed)
	if su.Host != ep.Host {
		t.Fatalf("signed URL host %q; want the public endpoint %s", su.Host, ep.Host)
	}
	req, _ := http.NewRequest(http.MethodPut, signed, strings.NewReader("png bytes"))
	req.Header.Set("Content-Type", "image/png")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT to the public signed URL = %d; want 200", resp.StatusCode)
	}
	if b, err := s.Get(ctx, "uploads/pub"); err != nil || string(b) != "png bytes" {
		t.Errorf("Get = %q, %v; want the bytes PUT through the public URL", b, err)
	}
	if _, err := OpenConfig(ctx, inner, Config{PublicURL: strings.Replace(public, "s3://", "s3://other-", 1)}); !errors.Is(err, ErrBadURL) {
		t.Errorf("a public URL naming another bucket: %v; want ErrBadURL", err)
	}
}
