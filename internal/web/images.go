package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/glimpse-oss/glimpse/internal/imagedata"
	"github.com/glimpse-oss/glimpse/internal/job"
	"github.com/glimpse-oss/glimpse/internal/store"
)

// tenantKey is the huma context key of the authenticated tenant.
type tenantKey struct{}

// tenantOf returns the tenant the auth middleware put in ctx.
func tenantOf(ctx context.Context) string {
	t, _ := ctx.Value(tenantKey{}).(string)
	return t
}

// ImageList is a list of images, with the cursor of the next page when
// there is one.
type ImageList struct {
	Images     []*job.Image `json:"images" nullable:"false"`
	NextCursor string       `json:"next_cursor,omitempty" doc:"Cursor of the next page; absent on the last page"`
	Next       string       `json:"next,omitempty" doc:"URL of the next page; absent on the last page"`
}

// uploadInput is POST /v1/images. The body is read by the handler itself,
// streaming, so it is not declared as a huma Body.
type uploadInput struct {
	Features       string `query:"features" doc:"Comma-separated features to compute (default labels; \"all\" for every one)" example:"labels"`
	Wait           string `query:"wait" doc:"Wait up to this long (Go duration such as 30s, at most the server's cap) for the result; 200 when finished in time, else 202" example:"30s"`
	Filename       string `query:"filename" doc:"File name of a raw-body upload (else Content-Disposition's, else \"upload\")"`
	IdempotencyKey string `header:"Idempotency-Key" doc:"Retries with the same key map to the same image (single-file uploads only; at most 200 characters)"`

	req *http.Request
	w   http.ResponseWriter
}

// Resolve captures the raw request so the handler can stream the body.
func (in *uploadInput) Resolve(ctx huma.Context) []error {
	in.req, in.w = humago.Unwrap(ctx)
	return nil
}

// uploadOutput is the answer to an upload: one image or a list.
type uploadOutput struct {
	Status   int
	Location string `header:"Location" doc:"URL of the image (single-file uploads)"`
	Body     any
}

// imageInput addresses one image.
type imageInput struct {
	ID string `path:"id" doc:"Image id" example:"img_0123456789abcdef01234567"`
}

// imageOutput is one image.
type imageOutput struct {
	Body *job.Image
}

// listInput is GET /v1/images. Parameters are strings and validated by the
// handler so that every bad value is a 400 with a clear message.
type listInput struct {
	Status string `query:"status" doc:"Only images in this status: queued, processing, done or failed"`
	Label  string `query:"label" doc:"Only images with this label, or with a label that lists it among its comma-separated synonyms (case-insensitive, whole names: tabby finds \"tabby, tabby cat\")" example:"Egyptian cat"`
	Limit  string `query:"limit" doc:"Page size, 1 to 1000 (default 50)" example:"50"`
	Cursor string `query:"cursor" doc:"Cursor from the previous page's next_cursor"`
	FeatureQuery
}

// listOutput is a page of images.
type listOutput struct {
	Body ImageList
}

// contentInput addresses one image's bytes.
type contentInput struct {
	ID          string `path:"id" doc:"Image id"`
	IfNoneMatch string `header:"If-None-Match" doc:"ETag from an earlier response"`
	Range       string `header:"Range" doc:"One byte range (bytes=0-1023, bytes=1024-, bytes=-512) for a 206 with just those bytes; several ranges get the whole image"`
	IfRange     string `header:"If-Range" doc:"The ETag the Range was computed against; another gets the whole image"`
}

// contentOutput is an image's original bytes, or a range of them.
type contentOutput struct {
	Status             int
	ContentType        string `header:"Content-Type"`
	ContentDisposition string `header:"Content-Disposition"`
	ContentRange       string `header:"Content-Range"`
	ContentLength      string `header:"Content-Length"`
	AcceptRanges       string `header:"Accept-Ranges"`
	ETag               string `header:"ETag"`
	CacheControl       string `header:"Cache-Control"`
	Body               []byte
}

// registerImages adds the /v1/images operations.
func (s *Server) registerImages() {
	auth := huma.Middlewares{s.authenticate}
	sec := s.security()
	errs := []int{http.StatusUnauthorized, http.StatusNotFound}

	huma.Register(s.api, huma.Operation{
		OperationID: "upload-images",
		Method:      http.MethodPost,
		Path:        "/v1/images",
		Summary:     "Upload images",
		Description: "Upload one or more images for analysis. Send either multipart/form-data with one or more parts " +
			"named `file`, or the raw image bytes with an `image/*` Content-Type. Without `wait` the answer is 202 " +
			"with the image (or `{\"images\": [...]}` for several files); with `wait` it is 200 once every image is " +
			"done or failed, else 202. The same bytes (or the same Idempotency-Key) map to the same image. " +
			"Sending a finished image again with features it lacks analyses it again for all of its features and " +
			"the new ones (its previous result stays readable meanwhile); while it is still queued or processing " +
			"that is a 409 with Retry-After.",
		Tags:          []string{"images"},
		Security:      sec,
		Middlewares:   auth,
		DefaultStatus: http.StatusAccepted,
		Errors: []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusConflict, http.StatusRequestEntityTooLarge,
			http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity, http.StatusServiceUnavailable},
	}, s.upload)
	// The body is documented here rather than in the operation: declaring it
	// there would make huma read and parse it before the handler streams it.
	// Likewise the response is one image or a list, which a Go type cannot say.
	post := s.api.OpenAPI().Paths["/v1/images"].Post
	post.RequestBody = uploadRequestBody()
	reg := s.api.OpenAPI().Components.Schemas
	oneOf := &huma.Schema{OneOf: []*huma.Schema{
		reg.Schema(reflect.TypeFor[job.Image](), true, "Image"),
		reg.Schema(reflect.TypeFor[ImageList](), true, "ImageList"),
	}}
	headers := post.Responses["202"].Headers
	for code, desc := range map[string]string{
		"200": "Every image is done or failed (the image, or {\"images\": [...]} for several files)",
		"202": "Accepted; processing continues (the image, or {\"images\": [...]} for several files)",
	} {
		post.Responses[code] = &huma.Response{
			Description: desc,
			Headers:     headers,
			Content:     map[string]*huma.MediaType{"application/json": {Schema: oneOf}},
		}
	}

	huma.Register(s.api, huma.Operation{
		OperationID: "list-images",
		Method:      http.MethodGet,
		Path:        "/v1/images",
		Summary:     "List images",
		Description: "Images of the caller's tenant, newest first, with cursor pagination.",
		Tags:        []string{"images"},
		Security:    sec,
		Middlewares: auth,
		Errors:      []int{http.StatusBadRequest, http.StatusUnauthorized},
	}, s.list)

	huma.Register(s.api, huma.Operation{
		OperationID: "get-image",
		Method:      http.MethodGet,
		Path:        "/v1/images/{id}",
		Summary:     "Get an image and its result",
		Tags:        []string{"images"},
		Security:    sec,
		Middlewares: auth,
		Errors:      errs,
	}, s.get)

	huma.Register(s.api, huma.Operation{
		OperationID: "get-image-content",
		Method:      http.MethodGet,
		Path:        "/v1/images/{id}/content",
		Summary:     "Download an image's original bytes",
		Tags:        []string{"images"},
		Security:    sec,
		Middlewares: auth,
		Errors:      errs,
		Responses: map[string]*huma.Response{
			"200": {Description: "The original bytes", Content: map[string]*huma.MediaType{
				"image/*": {Schema: &huma.Schema{Type: "string", ContentEncoding: "binary"}},
			}},
			"206": {Description: "The bytes of the one range asked for (Range), with Content-Range", Content: map[string]*huma.MediaType{
				"image/*": {Schema: &huma.Schema{Type: "string", ContentEncoding: "binary"}},
			}},
			"416": {Description: "The range starts past the end; Content-Range gives the size"},
		},
	}, s.content)

	huma.Register(s.api, huma.Operation{
		OperationID:   "delete-image",
		Method:        http.MethodDelete,
		Path:          "/v1/images/{id}",
		Summary:       "Delete an image, its bytes and its result",
		Tags:          []string{"images"},
		Security:      sec,
		Middlewares:   auth,
		DefaultStatus: http.StatusNoContent,
		Errors:        errs,
	}, s.delete)
	s.registerFeatureRoutes(auth, sec, errs)
}

// uploadRequestBody documents the two shapes of an upload body.
func uploadRequestBody() *huma.RequestBody {
	binary := func() *huma.Schema { return &huma.Schema{Type: "string", ContentEncoding: "binary"} }
	return &huma.RequestBody{
		Required:    true,
		Description: "multipart/form-data with one or more `file` parts, or the raw image bytes",
		Content: map[string]*huma.MediaType{
			"multipart/form-data": {Schema: &huma.Schema{
				Type:       "object",
				Properties: map[string]*huma.Schema{"file": {Type: "array", Items: binary()}},
				Required:   []string{"file"},
			}},
			"image/*":                  {Schema: binary()},
			"application/octet-stream": {Schema: binary()},
		},
	}
}

// authenticate is the huma middleware of /v1: it maps an API key to a tenant.
func (s *Server) authenticate(ctx huma.Context, next func(huma.Context)) {
	secret, err := credentials(ctx.Header("Authorization"), ctx.Header("X-API-Key"))
	challenge := `Bearer realm="glimpse"`
	if err != nil {
		ctx.SetHeader("WWW-Authenticate", challenge+`, error="invalid_request"`)
		_ = huma.WriteErr(s.api, ctx, http.StatusUnauthorized, err.Error())
		return
	}
	tenant := s.cfg.DefaultTenant
	switch {
	case secret != "":
		key, err := s.deps.Store.Authenticate(ctx.Context(), secret)
		if errors.Is(err, store.ErrUnauthorized) {
			ctx.SetHeader("WWW-Authenticate", challenge+`, error="invalid_token"`)
			_ = huma.WriteErr(s.api, ctx, http.StatusUnauthorized, "the API key is unknown or revoked")
			return
		}
		if err != nil {
			id := infoFrom(ctx.Context()).id
			s.log.LogAttrs(ctx.Context(), slog.LevelError, "web: checking the API key",
				slog.String("request_id", id), slog.Any("err", err))
			_ = huma.WriteErr(s.api, ctx, http.StatusInternalServerError,
				"internal error while checking the API key; quote request id "+id+" when reporting it")
			return
		}
		tenant = key.Tenant
	case s.cfg.RequireKeys:
		ctx.SetHeader("WWW-Authenticate", challenge)
		_ = huma.WriteErr(s.api, ctx, http.StatusUnauthorized,
			"an API key is required: send \"Authorization: Bearer <key>\" or \"X-API-Key: <key>\"")
		return
	}
	infoFrom(ctx.Context()).tenant = tenant
	next(huma.WithValue(ctx, tenantKey{}, tenant))
}

// credentials extracts the API key secret from the Authorization or
// X-API-Key header; "" when neither is sent.
func credentials(authorization, apiKey string) (string, error) {
	authorization = strings.TrimSpace(authorization)
	apiKey = strings.TrimSpace(apiKey)
	if authorization != "" {
		scheme, token, _ := strings.Cut(authorization, " ")
		token = strings.TrimSpace(token)
		if !strings.EqualFold(scheme, "Bearer") || token == "" {
			return "", errors.New("the Authorization header must be \"Bearer <key>\"")
		}
		if apiKey != "" && apiKey != token {
			return "", errors.New("the Authorization and X-API-Key headers name different keys")
		}
		return token, nil
	}
	return apiKey, nil
}

// get is GET /v1/images/{id}.
func (s *Server) get(ctx context.Context, in *imageInput) (*imageOutput, error) {
	img, err := s.lookup(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	return &imageOutput{Body: img}, nil
}

// lookup reads one image of the caller's tenant; a malformed id is a 404
// like any other unknown id.
func (s *Server) lookup(ctx context.Context, id string) (*job.Image, error) {
	if !job.ValidID(id) {
		return nil, errImageNotFound(id)
	}
	img, err := s.deps.Store.GetImage(ctx, tenantOf(ctx), id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errImageNotFound(id)
	}
	if err != nil {
		return nil, s.internalErr(ctx, "reading the image", err)
	}
	return img, nil
}

// errImageNotFound is the 404 of an unknown image id.
func errImageNotFound(id string) error {
	return huma.Error404NotFound(fmt.Sprintf("no image %q", truncate(id, 64)))
}

// list is GET /v1/images.
func (s *Server) list(ctx context.Context, in *listInput) (*listOutput, error) {
	opt := store.ListOptions{Tenant: tenantOf(ctx), Label: strings.TrimSpace(in.Label), Cursor: in.Cursor, Limit: 50}
	if in.Status != "" {
		st := job.Status(strings.ToLower(in.Status))
		if !st.Valid() {
			return nil, huma.Error400BadRequest(fmt.Sprintf(
				"unknown status %q; valid statuses are queued, processing, done and failed", truncate(in.Status, 64)))
		}
		opt.Status = st
	}
	if in.Limit != "" {
		n, err := strconv.Atoi(in.Limit)
		if err != nil || n < 1 || n > 1000 {
			return nil, huma.Error400BadRequest(fmt.Sprintf("limit must be a whole number from 1 to 1000, not %q", truncate(in.Limit, 64)))
		}
		opt.Limit = n
	}
	if err := in.FeatureQuery.apply(&opt); err != nil {
		return nil, err
	}
	page, err := s.deps.Store.ListImages(ctx, opt)
	if errors.Is(err, store.ErrBadCursor) {
		return nil, huma.Error400BadRequest("the cursor is not valid; use next_cursor from a previous page, or omit it")
	}
	if err != nil {
		return nil, s.internalErr(ctx, "listing images", err)
	}
	out := &listOutput{Body: ImageList{Images: page.Images, NextCursor: page.Next}}
	if out.Body.Images == nil {
		out.Body.Images = []*job.Image{}
	}
	if page.Next != "" {
		q := url.Values{"cursor": {page.Next}}
		if opt.Status != "" {
			q.Set("status", string(opt.Status))
		}
		if opt.Label != "" {
			q.Set("label", opt.Label)
		}
		if in.Limit != "" {
			q.Set("limit", strconv.Itoa(opt.Limit))
		}
		in.FeatureQuery.encode(q)
		out.Body.Next = "/v1/images?" + q.Encode()
	}
	return out, nil
}

// content is GET /v1/images/{id}/content.
func (s *Server) content(ctx context.Context, in *contentInput) (*contentOutput, error) {
	img, err := s.lookup(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	etag := `"` + img.SHA256 + `"`
	out := &contentOutput{
		Status:       http.StatusOK,
		ContentType:  img.ContentType,
		ETag:         etag,
		CacheControl: "private, max-age=86400",
		ContentDisposition: mime.FormatMediaType("inline",
			map[string]string{"filename": sanitizeFilename(img.Filename)}),
	}
	if out.ContentDisposition == "" {
		out.ContentDisposition = "inline"
	}
	if etagMatch(in.IfNoneMatch, etag) {
		out.Status = http.StatusNotModified
		out.ContentType = ""
		return out, nil
	}
	b, err := s.deps.Blobs.Get(ctx, job.InputKey(img.Tenant, img.ID))
	if s.deps.IsBlobNotFound(err) {
		return nil, huma.Error404NotFound(fmt.Sprintf("the bytes of image %q are gone", img.ID))
	}
	if err != nil {
		return nil, s.internalErr(ctx, "reading the image bytes", err)
	}
	if out.ContentType == "" {
		out.ContentType = "application/octet-stream"
	}
	out.AcceptRanges = "bytes"
	size := int64(len(b))
	if in.Range != "" && (in.IfRange == "" || in.IfRange == etag) {
		start, end, ok, satisfiable := byteRange(in.Range, size)
		switch {
		case !satisfiable:
			return nil, huma.ErrorWithHeaders(
				huma.NewError(http.StatusRequestedRangeNotSatisfiable, fmt.Sprintf("the range %q starts past the image's %d bytes", truncate(in.Range, 64), size)),
				http.Header{"Content-Range": {fmt.Sprintf("bytes */%d", size)}})
		case ok:
			out.Status = http.StatusPartialContent
			out.ContentRange = fmt.Sprintf("bytes %d-%d/%d", start, end, size)
			b = b[start : end+1]
		}
	}
	out.Body = b
	out.ContentLength = strconv.Itoa(len(b))
	return out, nil
}

// byteRange reads a Range header against a body of size bytes. ok is true
// for one satisfiable range, first to last byte inclusive. A header this
// server answers with the whole body instead, as RFC 9110 allows, gives ok
// false: another unit, several ranges, or a malformed one. satisfiable is
// false for one range that starts past the end (a 416).
func byteRange(h string, size int64) (start, end int64, ok, satisfiable bool) {
	unit, spec, found := strings.Cut(strings.TrimSpace(h), "=")
	if !found || !strings.EqualFold(strings.TrimSpace(unit), "bytes") || strings.Contains(spec, ",") {
		return 0, 0, false, true
	}
	first, last, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, 0, false, true
	}
	num := func(s string) (int64, bool) {
		n, err := strconv.ParseInt(s, 10, 64)
		return n, err == nil && n >= 0 && s != "" && s[0] != '+'
	}
	switch {
	case first == "": // the last n bytes
		n, valid := num(last)
		if !valid {
			return 0, 0, false, true
		}
		if n == 0 || size == 0 {
			return 0, 0, false, false
		}
		return max(size-n, 0), size - 1, true, true
	default:
		a, valid := num(first)
		if !valid {
			return 0, 0, false, true
		}
		z := size - 1
		if last != "" {
			if z2, valid := num(last); !valid || z2 < a {
				return 0, 0, false, true
			} else if z2 < z {
				z = z2
			}
		}
		if a >= size {
			return 0, 0, false, false
		}
		return a, z, true, true
	}
}

// etagMatch reports whether an If-None-Match header matches etag.
func etagMatch(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}

// delete is DELETE /v1/images/{id}. Blobs go first so that a failure leaves
// the row in place and a retry finishes the job.
func (s *Server) delete(ctx context.Context, in *imageInput) (*struct{}, error) {
	img, err := s.lookup(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	for _, key := range []string{job.InputKey(img.Tenant, img.ID), job.ResultKey(img.ID), job.ThumbnailKey(img.ID)} {
		if err := s.deps.Blobs.Delete(ctx, key); err != nil && !s.deps.IsBlobNotFound(err) {
			return nil, s.internalErr(ctx, "deleting the image bytes", err)
		}
	}
	err = s.deps.Store.DeleteImage(ctx, img.Tenant, img.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errImageNotFound(img.ID)
	}
	if err != nil {
		return nil, s.internalErr(ctx, "deleting the image", err)
	}
	return nil, nil
}

// truncate shortens s to at most n bytes for echoing in messages.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// waitParam parses ?wait=: a Go duration (or whole seconds) in (0, max].
func waitParam(v string, max time.Duration) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		if n, aerr := strconv.Atoi(v); aerr == nil {
			d, err = time.Duration(n)*time.Second, nil
		}
	}
	if err != nil || d <= 0 || d > max {
		return 0, huma.Error400BadRequest(fmt.Sprintf(
			"wait must be a duration such as 30s, more than 0 and at most %s; got %q", max, truncate(v, 64)))
	}
	return d, nil
}

// retryAfter wraps err with a Retry-After header.
func retryAfter(err error, seconds string) error {
	return huma.ErrorWithHeaders(err, http.Header{"Retry-After": {seconds}})
}

// imagedataErr turns an imagedata error about file name into a problem.
func imagedataErr(name string, err error) error {
	msg := imagedata.MessageOf(err)
	if name != "" {
		msg = fmt.Sprintf("file %q: %s", name, msg)
	}
	return huma.NewError(imagedata.StatusOf(err), msg)
}
