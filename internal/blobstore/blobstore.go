// Package blobstore keeps image bytes and result documents in a bucket
// chosen by URL, over gocloud.dev/blob: file:///abs/dir for a single
// machine, mem:// for tests, s3://bucket?… for any S3-compatible store.
//
// S3 URLs are read by gocloud.dev's s3blob (AWS SDK v2). The query
// parameters it accepts are: endpoint (e.g. http://s3:7070 for a
// self-hosted server), region, use_path_style=true (needed by most
// S3-compatible servers), disable_https, hostname_immutable, profile,
// role (an IAM role ARN to assume), anonymous, dualstack, fips,
// accelerate, ssetype and kmskeyid, rate_limiter_capacity,
// request_checksum_calculation and response_checksum_validation; any other
// parameter is an error. Credentials come from the AWS SDK's default chain:
// the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_SESSION_TOKEN), shared files (~/.aws, AWS_PROFILE), web identity
// (IRSA) or instance metadata. For example:
//
//	s3://glimpse?endpoint=http://127.0.0.1:7070&region=us-east-1&use_path_style=true
package blobstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/blob/memblob"
	_ "gocloud.dev/blob/s3blob" // registers s3:// with blob.DefaultURLMux
	"gocloud.dev/gcerrors"

	"github.com/glimpse-oss/glimpse/internal/durable"
)

// MetadataSHA256 is the metadata key holding the hex SHA-256 of a blob's
// bytes, set by Put.
const MetadataSHA256 = "sha256"

// DefaultBaseURL is where signed file:// URLs point when Config.BaseURL is
// empty; the web server serves and verifies them there.
const DefaultBaseURL = "/blobs"

// Config holds options for Open beyond the URL.
type Config struct {
	// SigningKey signs and verifies URLs of file:// stores. When empty a
	// random key is made, so signed URLs are only valid in this process.
	SigningKey []byte
	// BaseURL is the URL signed file:// URLs point at; DefaultBaseURL
	// when empty. Other schemes sign with their own service.
	BaseURL string
	// PublicURL, for s3:// stores, is the same bucket as clients outside
	// reach it: the same URL with the endpoint they can resolve (a server
	// inside a compose network is http://s3:7070 to Glimpse but
	// http://localhost:7070 to a browser). Signed URLs are made for it;
	// everything else uses the store's URL. Empty signs for the store's URL.
	PublicURL string
	// Syncers, when set, makes each Put of a file:// store durable through
	// the group-committed flushes of its file system's durable.Syncer
	// (shared with the other engines on that disk) instead of an fsync of
	// the file and one of its directory. Where syncfs cannot be relied on
	// (durable.ErrUnsupported) the store fsyncs as it does without it.
	Syncers *durable.Set
}

// Store is a bucket of blobs addressed by slash-separated keys.
type Store struct {
	b      *blob.Bucket
	signer *fileblob.URLSignerHMAC // nil unless file://
	dir    string                  // root directory of file:// stores
	// fs does the reads and writes of file:// stores (b only signs URLs
	// for them); see fileBlobs.
	fs *fileBlobs
	// s3 is set for s3blob buckets, whose driver binds a PUT URL's
	// Content-Type only through BeforeSign.
	s3 bool
	// signing is the bucket signed URLs are made with: b, or the bucket
	// of Config.PublicURL.
	signing *blob.Bucket
	// origin is the scheme://host signed URLs point at, "" when they point
	// at Glimpse itself (file://) or cannot be made (mem://).
	origin string
}

// Attrs describes a stored blob.
type Attrs struct {
	Size        int64
	ContentType string
	ModTime     time.Time
	// SHA256 is the hex digest Put recorded, "" when unknown.
	SHA256 string
}

// Open opens the store at rawURL with a default Config.
func Open(ctx context.Context, rawURL string) (*Store, error) {
	return OpenConfig(ctx, rawURL, Config{})
}

// OpenConfig opens the store at rawURL. file:// URLs need an absolute
// directory, which is created if missing; mem:// is a fresh in-memory
// bucket; any other scheme goes to gocloud.dev's default URL mux (s3://
// is linked in).
func OpenConfig(ctx context.Context, rawURL string, cfg Config) (*Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrBadURL, rawURL, err)
	}
	switch u.Scheme {
	case "file":
		return openFile(u, cfg)
	case "mem":
		b := memblob.OpenBucket(nil)
		return &Store{b: b, signing: b}, nil
	case "":
		return nil, fmt.Errorf("%w %q: no scheme (want file://, mem:// or s3://)", ErrBadURL, rawURL)
	}
	b, err := blob.OpenBucket(ctx, rawURL)
	if err != nil {
		return nil, fmt.Errorf("blobstore: open %s://%s: %w", u.Scheme, u.Host, err)
	}
	var c *s3.Client
	st := &Store{b: b, s3: b.As(&c), signing: b, origin: signedOrigin(u)}
	if cfg.PublicURL != "" {
		pu, err := url.Parse(cfg.PublicURL)
		if err != nil || pu.Scheme != u.Scheme || pu.Host != u.Host {
			b.Close()
			return nil, fmt.Errorf("%w: public url %q: want the same %s://%s bucket with another endpoint", ErrBadURL, cfg.PublicURL, u.Scheme, u.Host)
		}
		pub, err := blob.OpenBucket(ctx, cfg.PublicURL)
		if err != nil {
			b.Close()
			return nil, fmt.Errorf("blobstore: open public url: %w", err)
		}
		st.signing, st.origin = pub, signedOrigin(pu)
	}
	return st, nil
}

// signedOrigin is the scheme://host the signed URLs of the bucket at u
// point at: its endpoint parameter, or AWS's own hosts.
func signedOrigin(u *url.URL) string {
	if u.Scheme != "s3" {
		return ""
	}
	if ep, err := url.Parse(u.Query().Get("endpoint")); err == nil && ep.Scheme != "" && ep.Host != "" {
		return ep.Scheme + "://" + ep.Host
	}
	return "https://*.amazonaws.com"
}

// SignedOrigin is the scheme://host that the URLs SignURL makes point at
// when that is not Glimpse itself: a browser page that uploads to them
// must be allowed to connect there (Content-Security-Policy connect-src).
// It is "" for file:// stores.
func (s *Store) SignedOrigin() string { return s.origin }

func openFile(u *url.URL, cfg Config) (*Store, error) {
	dir := filepath.FromSlash(u.Path)
	if u.Host != "" && u.Host != "localhost" {
		return nil, fmt.Errorf("%w: file url with host %q; want file:///abs/dir", ErrBadURL, u.Host)
	}
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("%w: file url path %q is not absolute", ErrBadURL, u.Path)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("blobstore: create dir: %w", err)
	}
	key := cfg.SigningKey
	if len(key) == 0 {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("blobstore: signing key: %w", err)
		}
	}
	base := cfg.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	bu, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("%w: base url %q: %v", ErrBadURL, base, err)
	}
	signer := fileblob.NewURLSignerHMAC(bu, key)
	b, err := fileblob.OpenBucket(dir, &fileblob.Options{
		URLSigner: signer,
		// Temp files next to their target, so the final rename never
		// crosses file systems.
		NoTempDir:   true,
		DirFileMode: 0o750,
	})
	if err != nil {
		return nil, fmt.Errorf("blobstore: open %s: %w", dir, err)
	}
	fs := newFileBlobs(dir)
	if cfg.Syncers != nil {
		sy, err := cfg.Syncers.Find(dir)
		if err != nil {
			b.Close()
			return nil, fmt.Errorf("blobstore: %w", err)
		}
		if sy != nil {
			fs.syncer = sy
		}
	}
	return &Store{b: b, signing: b, signer: signer, dir: dir, fs: fs}, nil
}

// CheckKey reports whether key is acceptable: not empty, not starting with
// "/", and without empty, "." or ".." segments.
func CheckKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty", ErrBadKey)
	}
	if strings.HasPrefix(key, "/") {
		return fmt.Errorf("%w %q: leading slash", ErrBadKey, key)
	}
	if strings.ContainsAny(key, "\\\x00") {
		return fmt.Errorf("%w %q: backslash or NUL", ErrBadKey, key)
	}
	for _, seg := range strings.Split(key, "/") {
		switch seg {
		case "":
			return fmt.Errorf("%w %q: empty segment", ErrBadKey, key)
		case ".", "..":
			return fmt.Errorf("%w %q: %q segment", ErrBadKey, key, seg)
		}
	}
	return nil
}

// Put stores b under key with contentType, replacing any previous blob.
// Readers see the old or the new blob, never a partial one. On file://
// stores the bytes are fsynced before Put returns. The blob's SHA-256 is
// recorded under MetadataSHA256.
func (s *Store) Put(ctx context.Context, key string, b []byte, contentType string) error {
	return s.PutDigest(ctx, key, b, contentType, "")
}

// PutDigest is Put for a caller that has already hashed b: digest is the
// hex SHA-256 of b, recorded without hashing the bytes again ("" makes
// PutDigest hash them). A wrong digest is the caller's bug: it is recorded
// as given.
func (s *Store) PutDigest(ctx context.Context, key string, b []byte, contentType, digest string) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	if digest == "" {
		sum := sha256.Sum256(b)
		digest = hex.EncodeToString(sum[:])
	}
	if s.fs != nil {
		if err := s.fs.put(ctx, key, b, contentType, digest); err != nil {
			return s.wrap("put", key, err)
		}
		return nil
	}
	w, err := s.b.NewWriter(ctx, key, &blob.WriterOptions{
		ContentType: contentType,
		Metadata:    map[string]string{MetadataSHA256: digest},
	})
	if err != nil {
		return s.wrap("put", key, err)
	}
	if _, err := w.Write(b); err != nil {
		_ = w.Close()
		return s.wrap("put", key, err)
	}
	if err := w.Close(); err != nil {
		return s.wrap("put", key, err)
	}
	return nil
}

// Get returns the bytes under key, or ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	if s.fs != nil {
		b, err := s.fs.get(key)
		if err != nil {
			return nil, s.wrap("get", key, err)
		}
		return b, nil
	}
	b, err := s.b.ReadAll(ctx, key)
	if err != nil {
		return nil, s.wrap("get", key, err)
	}
	return b, nil
}

// NewReader opens the blob under key for streaming, or returns
// ErrNotFound. The caller closes the reader.
func (s *Store) NewReader(ctx context.Context, key string) (io.ReadCloser, Attrs, error) {
	if err := CheckKey(key); err != nil {
		return nil, Attrs{}, err
	}
	if s.fs != nil {
		r, a, err := s.fs.open(key)
		if err != nil {
			return nil, Attrs{}, s.wrap("read", key, err)
		}
		return r, a, nil
	}
	r, err := s.b.NewReader(ctx, key, nil)
	if err != nil {
		return nil, Attrs{}, s.wrap("read", key, err)
	}
	a := Attrs{Size: r.Size(), ContentType: r.ContentType(), ModTime: r.ModTime()}
	return r, a, nil
}

// Stat returns the attributes of the blob under key, or ErrNotFound.
func (s *Store) Stat(ctx context.Context, key string) (Attrs, error) {
	if err := CheckKey(key); err != nil {
		return Attrs{}, err
	}
	if s.fs != nil {
		a, err := s.fs.stat(key)
		if err != nil {
			return Attrs{}, s.wrap("stat", key, err)
		}
		return a, nil
	}
	a, err := s.b.Attributes(ctx, key)
	if err != nil {
		return Attrs{}, s.wrap("stat", key, err)
	}
	return Attrs{Size: a.Size, ContentType: a.ContentType, ModTime: a.ModTime, SHA256: a.Metadata[MetadataSHA256]}, nil
}

// Delete removes the blob under key; a missing blob is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	if s.fs != nil {
		if err := s.fs.delete(key); err != nil {
			return s.wrap("delete", key, err)
		}
		return nil
	}
	if err := s.b.Delete(ctx, key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return s.wrap("delete", key, err)
	}
	return nil
}

// Exists reports whether a blob is stored under key.
func (s *Store) Exists(ctx context.Context, key string) (bool, error) {
	if err := CheckKey(key); err != nil {
		return false, err
	}
	if s.fs != nil {
		ok, err := s.fs.exists(key)
		if err != nil {
			return false, s.wrap("exists", key, err)
		}
		return ok, nil
	}
	ok, err := s.b.Exists(ctx, key)
	if err != nil {
		return false, s.wrap("exists", key, err)
	}
	return ok, nil
}

// List calls fn with the key of every blob whose key starts with prefix, in
// no particular order, and stops at fn's first error, which it returns.
func (s *Store) List(ctx context.Context, prefix string, fn func(key string) error) error {
	if s.fs != nil {
		return s.fs.list(ctx, prefix, fn)
	}
	it := s.b.List(&blob.ListOptions{Prefix: prefix})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("blobstore: list %s: %w", prefix, err)
		}
		if obj.IsDir {
			continue
		}
		if err := fn(obj.Key); err != nil {
			return err
		}
	}
}

// SignOptions say what a signed URL grants.
type SignOptions struct {
	// Method is "GET" or "PUT"; "" means GET.
	Method string
	// Expiry is how long the URL stays valid; 0 means gocloud.dev's
	// default of an hour. S3 accepts 1s to 7 days.
	Expiry time.Duration
	// ContentType, for PUT only, is the Content-Type header the upload
	// must carry. The signature covers it: S3 answers 403 to an upload
	// with another type, and CheckSignedRequest refuses it on file://
	// stores. Empty leaves the upload's type unchecked.
	ContentType string
}

// SignedURL returns a URL granting method ("GET" or "PUT") on key until
// expiry passes. It is SignURL without a Content-Type.
func (s *Store) SignedURL(ctx context.Context, key, method string, expiry time.Duration) (string, error) {
	return s.SignURL(ctx, key, SignOptions{Method: method, Expiry: expiry})
}

// SignURL returns a URL granting o.Method on key until o.Expiry passes.
// On S3 it is a pre-signed URL (SigV4 in the query) for the endpoint of
// the store's URL, so clients must be able to reach that endpoint. On
// file:// stores it points at Config.BaseURL, and the server behind it
// checks requests with CheckSignedRequest. Stores that cannot sign
// (mem://) return ErrNoSigning.
func (s *Store) SignURL(ctx context.Context, key string, o SignOptions) (string, error) {
	if err := CheckKey(key); err != nil {
		return "", err
	}
	method := o.Method
	if method == "" {
		method = http.MethodGet
	}
	if method != http.MethodGet && method != http.MethodPut {
		return "", fmt.Errorf("blobstore: sign %s: method %q: want GET or PUT", key, o.Method)
	}
	if o.ContentType != "" && method != http.MethodPut {
		return "", fmt.Errorf("blobstore: sign %s: a content type binds only PUT urls", key)
	}
	opts := &blob.SignedURLOptions{Method: method, Expiry: o.Expiry}
	if s.s3 && o.ContentType != "" {
		// s3blob refuses SignedURLOptions.ContentType; setting it on the
		// request being presigned makes content-type a signed header.
		ct := o.ContentType
		opts.BeforeSign = func(as func(any) bool) error {
			var in *s3.PutObjectInput
			if !as(&in) {
				return fmt.Errorf("blobstore: sign %s: s3 driver did not expose the put request", key)
			}
			in.ContentType = aws.String(ct)
			return nil
		}
	} else {
		opts.ContentType = o.ContentType
	}
	u, err := s.signing.SignedURL(ctx, key, opts)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.Unimplemented {
			return "", ErrNoSigning
		}
		return "", s.wrap("sign", key, err)
	}
	return u, nil
}

// KeyFromSignedURL checks a URL made by SignedURL on a file:// store and
// returns its key and signed method. It fails with ErrBadSignature for
// forged or expired URLs. It does not look at a signed Content-Type; a
// server accepting uploads uses CheckSignedRequest.
func (s *Store) KeyFromSignedURL(ctx context.Context, u *url.URL) (key, method string, err error) {
	if s.signer == nil {
		return "", "", ErrNoSigning
	}
	key, err = s.signer.KeyFromURL(ctx, u)
	if err != nil {
		return "", "", fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	if err := CheckKey(key); err != nil {
		return "", "", err
	}
	return key, u.Query().Get("method"), nil
}

// CheckSignedRequest checks a request made to a URL from SignURL on a
// file:// store, as S3 would: the signature and expiry, that the request's
// method is the signed one (HEAD passes for GET), and for a PUT signed
// with a Content-Type that the request carries exactly that type. It
// returns the key, or an error wrapping ErrBadSignature (answer 403).
func (s *Store) CheckSignedRequest(ctx context.Context, r *http.Request) (string, error) {
	key, method, err := s.KeyFromSignedURL(ctx, r.URL)
	if err != nil {
		return "", err
	}
	if r.Method != method && !(r.Method == http.MethodHead && method == http.MethodGet) {
		return "", fmt.Errorf("%w: signed for %s, used for %s", ErrBadSignature, method, r.Method)
	}
	if ct := r.URL.Query().Get("contentType"); ct != "" && r.Header.Get("Content-Type") != ct {
		return "", fmt.Errorf("%w: signed for Content-Type %q, sent %q", ErrBadSignature, ct, r.Header.Get("Content-Type"))
	}
	return key, nil
}

// Ping checks that the bucket is reachable.
func (s *Store) Ping(ctx context.Context) error {
	ok, err := s.b.IsAccessible(ctx)
	if err != nil {
		return fmt.Errorf("blobstore: ping: %w", err)
	}
	if !ok {
		return errors.New("blobstore: ping: bucket not accessible")
	}
	return nil
}

// Close releases the bucket.
func (s *Store) Close() error {
	if s.fs != nil {
		s.fs.close()
	}
	if s.signing != s.b {
		s.signing.Close()
	}
	if err := s.b.Close(); err != nil {
		return fmt.Errorf("blobstore: close: %w", err)
	}
	return nil
}

// wrap turns a gocloud error into ours, with ErrNotFound for missing keys.
func (s *Store) wrap(op, key string, err error) error {
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrBadKey) {
		return err
	}
	if gcerrors.Code(err) == gcerrors.NotFound {
		return fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	return fmt.Errorf("blobstore: %s %s: %w", op, key, err)
}
