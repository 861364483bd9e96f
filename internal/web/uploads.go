package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/glimpse-oss/glimpse/internal/blobstore"
	"github.com/glimpse-oss/glimpse/internal/imagedata"
	"github.com/glimpse-oss/glimpse/internal/job"
)

// Pre-signed uploads. POST /v1/uploads records what the client intends to
// send (name, type, size, features) and answers with a URL signed for one
// PUT of that key until it expires. With a file:// blob store the URL points
// back at PUT /v1/uploads/{id}, which checks the signature, method, expiry and
// content type, then takes the bytes through the same path as POST
// /v1/images. With a store that signs its own URLs (S3) the URL is the
// store's, and the storage event completes the upload (CompleteUpload).

// Signer signs blob URLs and checks the ones it signed. *blobstore.Store
// satisfies it.
type Signer interface {
	// SignURL returns a URL granting o.Method on key until o.Expiry passes,
	// bound to o.ContentType.
	SignURL(ctx context.Context, key string, o blobstore.SignOptions) (string, error)
	// KeyFromSignedURL checks a URL made by SignURL and returns its key and
	// signed method; it fails for forged or expired URLs and for stores
	// whose URLs are checked by the store itself (S3).
	KeyFromSignedURL(ctx context.Context, u *url.URL) (key, method string, err error)
	// CheckSignedRequest checks a request to a URL from SignURL: signature,
	// expiry, method and Content-Type. It returns the key, or an error
	// wrapping blobstore.ErrBadSignature.
	CheckSignedRequest(ctx context.Context, r *http.Request) (string, error)
}

// Default values of the upload Config fields.
const (
	DefaultUploadURLTTL = 15 * time.Minute
	maxUploadURLTTL     = time.Hour
	// uploadKeyPrefix holds the bytes of pre-signed uploads that go straight
	// to the store; uploadMetaPrefix the intent recorded by POST /v1/uploads.
	uploadKeyPrefix  = "uploads/"
	uploadMetaPrefix = "upload-intents/"
)

// acceptedTypes are the content types an upload may declare.
var acceptedTypes = []string{"image/jpeg", "image/png", "image/gif", "image/webp"}

// uploadIntent is what POST /v1/uploads records, as JSON in the blob store,
// until the bytes arrive.
type uploadIntent struct {
	ID          string        `json:"id"`
	Tenant      string        `json:"tenant"`
	Key         string        `json:"key"`
	Filename    string        `json:"filename"`
	ContentType string        `json:"content_type"`
	Size        int64         `json:"size"`
	Features    []job.Feature `json:"features"`
	ExpiresAt   time.Time     `json:"expires_at"`
}

// UploadRequest is the body of POST /v1/uploads.
type UploadRequest struct {
	Filename    string   `json:"filename" maxLength:"1024" doc:"File name to record" example:"IMG_0042.jpg"`
	ContentType string   `json:"content_type" doc:"Type of the bytes that will be sent: image/jpeg, image/png, image/gif or image/webp; the PUT must send the same Content-Type" example:"image/jpeg"`
	Size        int64    `json:"size" minimum:"1" doc:"Size of the file in bytes; the PUT may not send more" example:"6291456"`
	Features    []string `json:"features,omitempty" doc:"Features to compute (default labels; \"all\" for every one)" example:"[\"labels\",\"qr\"]"`
	ExpiresIn   int      `json:"expires_in,omitempty" minimum:"1" maximum:"3600" doc:"Seconds the URL stays valid (default 900)"`
}

// UploadTicket answers POST /v1/uploads.
type UploadTicket struct {
	ID        string            `json:"id" doc:"Upload id" example:"upl_0123456789abcdef01234567"`
	UploadURL string            `json:"upload_url" doc:"Where to send the bytes"`
	Method    string            `json:"method" doc:"HTTP method to use" example:"PUT"`
	Headers   map[string]string `json:"headers" doc:"Headers the request must carry"`
	ExpiresAt time.Time         `json:"expires_at" doc:"When the URL stops working"`
}

type createUploadInput struct {
	Body UploadRequest
	req  *http.Request
}

func (in *createUploadInput) Resolve(ctx huma.Context) []error {
	in.req, _ = humago.Unwrap(ctx)
	return nil
}

type createUploadOutput struct {
	Body UploadTicket
}

// putUploadInput is PUT /v1/uploads/{id}; the body is streamed by the handler.
type putUploadInput struct {
	ID        string `path:"id" doc:"Upload id from POST /v1/uploads"`
	Obj       string `query:"obj" doc:"Signed blob key (part of the signed URL)"`
	Expiry    string `query:"expiry" doc:"Unix time the URL expires (part of the signed URL)"`
	Method    string `query:"method" doc:"Signed method (part of the signed URL)"`
	Signature string `query:"signature" doc:"Signature (part of the signed URL)"`

	req *http.Request
	w   http.ResponseWriter
}

func (in *putUploadInput) Resolve(ctx huma.Context) []error {
	in.req, in.w = humago.Unwrap(ctx)
	return nil
}

type putUploadOutput struct {
	Status   int
	Location string `header:"Location" doc:"URL of the image"`
	Body     *job.Image
}

// registerUploads adds POST /v1/uploads and PUT /v1/uploads/{id}.
func (s *Server) registerUploads() {
	huma.Register(s.api, huma.Operation{
		OperationID: "create-upload",
		Method:      http.MethodPost,
		Path:        "/v1/uploads",
		Summary:     "Get a pre-signed URL for a large upload",
		Description: "Answers with a URL signed for one `PUT` of the file's bytes, bound to the key, the method and " +
			"the content type, valid until `expires_at`. Send the bytes there with the listed headers; when they " +
			"arrive, processing starts as for POST /v1/images and the PUT answers with the image. A tampered, " +
			"expired, reused or mismatched URL gets 403.",
		Tags:          []string{"uploads"},
		Security:      s.security(),
		Middlewares:   huma.Middlewares{s.authenticate},
		DefaultStatus: http.StatusCreated,
		Errors: []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusRequestEntityTooLarge,
			http.StatusUnsupportedMediaType, http.StatusNotImplemented},
	}, s.createUpload)

	huma.Register(s.api, huma.Operation{
		OperationID: "put-upload",
		Method:      http.MethodPut,
		Path:        "/v1/uploads/{id}",
		Summary:     "Send the bytes of a pre-signed upload",
		Description: "The target of `upload_url` when the server stores blobs itself. The signature is the " +
			"credential: no API key is needed. The Content-Type must be the one declared. The answer is 202 " +
			"with the queued image, or 200 when the bytes are an image already finished.",
		Tags:          []string{"uploads"},
		Security:      []map[string][]string{{}},
		DefaultStatus: http.StatusAccepted,
		Errors: []int{http.StatusBadRequest, http.StatusForbidden, http.StatusRequestEntityTooLarge,
			http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity, http.StatusServiceUnavailable},
	}, s.putUpload)
	s.api.OpenAPI().Paths["/v1/uploads/{id}"].Put.RequestBody = &huma.RequestBody{
		Required:    true,
		Description: "The image bytes, with the Content-Type declared to POST /v1/uploads",
		Content:     map[string]*huma.MediaType{"image/*": {Schema: &huma.Schema{Type: "string", ContentEncoding: "binary"}}},
	}
}

// createUpload is POST /v1/uploads.
func (s *Server) createUpload(ctx context.Context, in *createUploadInput) (*createUploadOutput, error) {
	if s.deps.Signer == nil {
		return nil, huma.Error501NotImplemented("this server cannot sign upload URLs; send the file to POST /v1/images instead")
	}
	body := in.Body
	features, err := job.ParseFeatures(strings.Join(body.Features, ","))
	if err != nil {
		return nil, huma.Error400BadRequest(strings.TrimPrefix(err.Error(), "job: "))
	}
	ct, _, err := mime.ParseMediaType(body.ContentType)
	if err != nil || !accepted(ct) {
		return nil, huma.Error415UnsupportedMediaType(fmt.Sprintf(
			"content_type %q is not an image type we read; use one of %s", truncate(body.ContentType, 100), strings.Join(acceptedTypes, ", ")))
	}
	if body.Size > s.cfg.Limits.MaxBytes {
		return nil, huma.Error413RequestEntityTooLarge(fmt.Sprintf(
			"the file is %s", imagedata.SizeAndLimit(body.Size, s.cfg.Limits.MaxBytes)))
	}
	ttl := s.cfg.UploadURLTTL
	if body.ExpiresIn > 0 {
		ttl = time.Duration(body.ExpiresIn) * time.Second
	}
	var rnd [12]byte
	_, _ = rand.Read(rnd[:])
	tenant := tenantOf(ctx)
	intent := uploadIntent{
		ID:          "upl_" + hex.EncodeToString(rnd[:]),
		Tenant:      tenant,
		Filename:    sanitizeFilename(body.Filename),
		ContentType: ct,
		Size:        body.Size,
		Features:    features,
		ExpiresAt:   s.now().Add(ttl).UTC().Truncate(time.Second),
	}
	intent.Key = uploadKeyPrefix + tenant + "/" + intent.ID
	b, err := json.Marshal(intent)
	if err != nil {
		return nil, s.internalErr(ctx, "recording the upload", err)
	}
	if err := s.deps.Blobs.Put(ctx, uploadMetaKey(intent.ID), b, "application/json"); err != nil {
		return nil, s.internalErr(ctx, "recording the upload", err)
	}
	signed, err := s.deps.Signer.SignURL(ctx, intent.Key, blobstore.SignOptions{
		Method: http.MethodPut, Expiry: ttl, ContentType: ct,
	})
	if errors.Is(err, blobstore.ErrNoSigning) {
		return nil, huma.Error501NotImplemented("this server's blob store cannot sign upload URLs; send the file to POST /v1/images instead")
	}
	if err != nil {
		return nil, s.internalErr(ctx, "signing the upload URL", err)
	}
	uploadURL := signed
	if u, err := url.Parse(signed); err == nil {
		if key, _, err := s.deps.Signer.KeyFromSignedURL(ctx, u); err == nil && key == intent.Key {
			// Signed by us: the bytes come to PUT /v1/uploads/{id}.
			uploadURL = s.publicBase(in.req) + "/v1/uploads/" + intent.ID + "?" + u.RawQuery
		}
	}
	return &createUploadOutput{Body: UploadTicket{
		ID:        intent.ID,
		UploadURL: uploadURL,
		Method:    http.MethodPut,
		Headers:   map[string]string{"Content-Type": ct},
		ExpiresAt: intent.ExpiresAt,
	}}, nil
}

// putUpload is PUT /v1/uploads/{id}.
func (s *Server) putUpload(ctx context.Context, in *putUploadInput) (*putUploadOutput, error) {
	if s.deps.Signer == nil {
		return nil, errForbidden("this server does not accept pre-signed uploads")
	}
	// Tell an expired URL from a forged one, for a useful message; the
	// signature check below covers both either way.
	if exp, err := strconv.ParseInt(in.Expiry, 10, 64); err == nil && s.now().Unix() > exp {
		return nil, errForbidden("the upload URL has expired; ask for a new one with POST /v1/uploads")
	}
	key, err := s.deps.Signer.CheckSignedRequest(ctx, in.req)
	if err != nil {
		if _, why, ok := strings.Cut(err.Error(), "signed for "); ok && errors.Is(err, blobstore.ErrBadSignature) {
			// Method or Content-Type differ from the signed ones.
			return nil, errForbidden("the upload URL is signed for " + why)
		}
		return nil, errForbidden("the upload URL's signature does not match (was it changed?); ask for a new one with POST /v1/uploads")
	}
	if !strings.HasPrefix(key, uploadKeyPrefix) || !strings.HasSuffix(key, "/"+in.ID) {
		return nil, errForbidden("the upload URL was not signed for this upload")
	}
	intent, err := s.loadIntent(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	if intent.Key != key {
		return nil, errForbidden("the upload URL was not signed for this upload")
	}
	if s.now().After(intent.ExpiresAt) {
		return nil, errForbidden("the upload URL has expired; ask for a new one with POST /v1/uploads")
	}
	if ct, _, _ := mime.ParseMediaType(in.req.Header.Get("Content-Type")); ct != intent.ContentType {
		return nil, errForbidden(fmt.Sprintf("the upload URL is signed for Content-Type %s; the request sent %q",
			intent.ContentType, truncate(in.req.Header.Get("Content-Type"), 100)))
	}
	infoFrom(ctx).tenant = intent.Tenant

	lim := s.cfg.Limits
	lim.MaxBytes = min(lim.MaxBytes, intent.Size)
	if in.req.ContentLength > lim.MaxBytes {
		return nil, huma.Error413RequestEntityTooLarge(fmt.Sprintf(
			"the body is %d bytes; %d were declared when the upload URL was made", in.req.ContentLength, intent.Size))
	}
	// The same slow-body deadline as POST /v1/images: a URL holder who
	// trickles the bytes is cut off with 408, not given a connection for
	// as long as it likes.
	g := newBodyGuard(in.w, in.req.Body, lim)
	data, err := readImageBody(in.w, g, in.req.ContentLength, lim)
	g.release(err)
	if err != nil {
		return nil, readErr(false, "", err)
	}
	img, err := s.acceptIntent(ctx, intent, data)
	if err != nil {
		return nil, err
	}
	out := &putUploadOutput{Status: http.StatusAccepted, Location: "/v1/images/" + img.ID, Body: img}
	if img.Status.Terminal() {
		out.Status = http.StatusOK // the same bytes, finished already: as POST /v1/images answers
	}
	return out, nil
}

// SweepUploads forgets the pre-signed uploads whose URL expired more than
// grace ago without the upload completing: their records and any bytes that
// reached the store. (A completed upload's record is removed when it
// completes.) It returns how many it forgot. Blob stores that cannot list
// keys are left alone.
func (s *Server) SweepUploads(ctx context.Context, grace time.Duration) (int, error) {
	l, ok := s.deps.Blobs.(interface {
		List(ctx context.Context, prefix string, fn func(key string) error) error
	})
	if !ok {
		return 0, nil
	}
	cutoff := s.now().Add(-grace)
	var expired []uploadIntent
	err := l.List(ctx, uploadMetaPrefix, func(key string) error {
		b, err := s.deps.Blobs.Get(ctx, key)
		if err != nil {
			if s.deps.IsBlobNotFound(err) {
				return nil // completed meanwhile
			}
			return err
		}
		var in uploadIntent
		if err := json.Unmarshal(b, &in); err != nil || in.ID == "" || uploadMetaKey(in.ID) != key {
			s.log.Warn("web: unreadable upload record left alone", "key", key, "err", err)
			return nil
		}
		if in.ExpiresAt.Before(cutoff) {
			expired = append(expired, in)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, in := range expired {
		if in.Key != "" && strings.HasPrefix(in.Key, uploadKeyPrefix) {
			if err := s.deps.Blobs.Delete(ctx, in.Key); err != nil && !s.deps.IsBlobNotFound(err) {
				return n, err
			}
		}
		if err := s.deps.Blobs.Delete(ctx, uploadMetaKey(in.ID)); err != nil && !s.deps.IsBlobNotFound(err) {
			return n, err
		}
		n++
	}
	return n, nil
}

// CompleteUpload finishes a pre-signed upload whose bytes the client sent
// straight to the blob store under key (as a storage event reports it): it
// reads them, checks them like any upload and starts processing. Keys
// outside the upload prefix are refused.
func (s *Server) CompleteUpload(ctx context.Context, key string) (*job.Image, error) {
	if !strings.HasPrefix(key, uploadKeyPrefix) {
		return nil, fmt.Errorf("web: %q is not an upload key", key)
	}
	id := key[strings.LastIndexByte(key, '/')+1:]
	intent, err := s.loadIntent(ctx, id)
	if err != nil {
		return nil, err
	}
	if intent.Key != key {
		return nil, fmt.Errorf("web: upload %s was signed for another key", id)
	}
	data, err := s.deps.Blobs.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("web: read upload %s: %w", id, err)
	}
	if int64(len(data)) > min(s.cfg.Limits.MaxBytes, intent.Size) {
		_ = s.deps.Blobs.Delete(ctx, key)
		return nil, huma.Error413RequestEntityTooLarge(fmt.Sprintf(
			"the upload is %d bytes; %d were declared", len(data), intent.Size))
	}
	img, err := s.acceptIntent(ctx, intent, data)
	if err != nil {
		return nil, err
	}
	if err := s.deps.Blobs.Delete(ctx, key); err != nil && !s.deps.IsBlobNotFound(err) {
		s.log.LogAttrs(ctx, slog.LevelWarn, "web: delete completed upload bytes", slog.String("key", key), slog.Any("err", err))
	}
	return img, nil
}

// acceptIntent checks the bytes of an upload and hands them to the same
// accept path as POST /v1/images, then forgets the intent so the URL cannot
// be used again.
func (s *Server) acceptIntent(ctx context.Context, intent *uploadIntent, data []byte) (*job.Image, error) {
	hdr, err := imagedata.Inspect(data, s.cfg.Limits)
	if err != nil {
		return nil, imagedataErr("", err)
	}
	img, err := s.accept(ctx, intent.Tenant, upload{name: intent.Filename, data: data, hdr: hdr}, intent.Features, "")
	if err != nil {
		return nil, err
	}
	if err := s.deps.Blobs.Delete(ctx, uploadMetaKey(intent.ID)); err != nil && !s.deps.IsBlobNotFound(err) {
		s.log.LogAttrs(ctx, slog.LevelWarn, "web: forget upload intent", slog.String("upload_id", intent.ID), slog.Any("err", err))
	}
	return img, nil
}

// loadIntent reads the intent recorded for upload id; a missing one means the
// URL was used already (or never issued), which is a 403.
func (s *Server) loadIntent(ctx context.Context, id string) (*uploadIntent, error) {
	if !validUploadID(id) {
		return nil, errForbidden("the upload URL was not signed for this upload")
	}
	b, err := s.deps.Blobs.Get(ctx, uploadMetaKey(id))
	if s.deps.IsBlobNotFound(err) {
		return nil, errForbidden("this upload URL was already used; ask for a new one with POST /v1/uploads")
	}
	if err != nil {
		return nil, s.internalErr(ctx, "reading the upload", err)
	}
	var intent uploadIntent
	if err := json.Unmarshal(b, &intent); err != nil {
		return nil, s.internalErr(ctx, "reading the upload", err)
	}
	return &intent, nil
}

func uploadMetaKey(id string) string { return uploadMetaPrefix + id + ".json" }

// validUploadID reports whether id has the shape of an upload id.
func validUploadID(id string) bool {
	if len(id) != 28 || !strings.HasPrefix(id, "upl_") {
		return false
	}
	_, err := hex.DecodeString(id[4:])
	return err == nil && strings.ToLower(id) == id
}

func accepted(ct string) bool {
	for _, t := range acceptedTypes {
		if ct == t {
			return true
		}
	}
	return false
}

// publicBase is the scheme and host clients reach this server at:
// Config.PublicURL when set, else what the request was sent to.
func (s *Server) publicBase(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return strings.TrimSuffix(s.cfg.PublicURL, "/")
	}
	scheme := "http"
	if r != nil && r.TLS != nil {
		scheme = "https"
	}
	host := "localhost"
	if r != nil && r.Host != "" {
		host = r.Host
	}
	return scheme + "://" + host
}

func errForbidden(detail string) error { return huma.Error403Forbidden(detail) }
