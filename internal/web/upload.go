package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"

	"github.com/glimpse-oss/glimpse/internal/imagedata"
	"github.com/glimpse-oss/glimpse/internal/job"
	"github.com/glimpse-oss/glimpse/internal/store"
)

const (
	// maxIdempotencyKey is the longest Idempotency-Key accepted.
	maxIdempotencyKey = 200
	// multipartSlack is the body allowance, beyond the files themselves, for
	// multipart headers, boundaries and small form fields.
	multipartSlack = 1 << 20
	// perPartSlack is the extra allowance per file part.
	perPartSlack = 16 << 10
	// maxFilename is the longest file name kept, in bytes.
	maxFilename = 255
	// defaultFilename names uploads that carry no file name.
	defaultFilename = "upload"
	// maxOtherParts is how many parts not named "file" a multipart body may
	// carry besides its files; together with MaxFiles it caps the parts read.
	maxOtherParts = 32
)

// howToUpload explains the two accepted request shapes.
const howToUpload = "send multipart/form-data with one or more parts named \"file\", " +
	"or the raw image bytes with an image/* Content-Type (such as image/jpeg) or application/octet-stream"

// upload is one file read from the request.
type upload struct {
	name string
	data []byte
	hdr  imagedata.Header
	sha  string // hex SHA-256 of data
}

// upload is POST /v1/images.
func (s *Server) upload(ctx context.Context, in *uploadInput) (*uploadOutput, error) {
	tenant := tenantOf(ctx)
	features, err := job.ParseFeatures(in.Features)
	if err != nil {
		return nil, huma.Error400BadRequest(strings.TrimPrefix(err.Error(), "job: "))
	}
	wait, err := waitParam(in.Wait, s.cfg.MaxWait)
	if err != nil {
		return nil, err
	}
	idem := in.IdempotencyKey
	if len(idem) > maxIdempotencyKey {
		return nil, huma.Error400BadRequest(fmt.Sprintf("Idempotency-Key is %d characters; the limit is %d", len(idem), maxIdempotencyKey))
	}
	if strings.IndexFunc(idem, func(r rune) bool { return r < 0x20 || r > 0x7e }) >= 0 {
		return nil, huma.Error400BadRequest("Idempotency-Key must be printable ASCII")
	}

	files, err := s.readUploads(in.req, in.w, in.Filename, idem != "")
	if err != nil {
		var se huma.StatusError
		if errors.As(err, &se) && se.GetStatus() == http.StatusBadRequest {
			drainBody(in.req.Body)
		}
		return nil, err
	}
	// Validate every file before storing any, so a bad file rejects the
	// whole request and nothing is half-accepted.
	multi := len(files) > 1 || isMultipart(in.req)
	for i := range files {
		hdr, err := imagedata.Inspect(files[i].data, s.cfg.Limits)
		if err != nil {
			name := ""
			if multi {
				name = files[i].name
			}
			return nil, imagedataErr(name, err)
		}
		files[i].hdr = hdr
		files[i].sha = job.ContentHash(files[i].data)
	}
	// Likewise a file that is an image known already and cannot be asked
	// for these features now (see widen) refuses the request before any
	// other file is stored. One file needs no look ahead: accept checks.
	if len(files) > 1 {
		for _, f := range files {
			img, err := s.deps.Store.GetImage(ctx, tenant, job.NewImageID(tenant, f.sha, idem))
			switch {
			case errors.Is(err, store.ErrNotFound):
			case err != nil:
				return nil, s.internalErr(ctx, "looking up the image", err)
			default:
				if err := widenRefusal(img, features, idem, f.name); err != nil {
					return nil, err
				}
			}
		}
	}

	images := make([]*job.Image, len(files))
	for i, f := range files {
		img, err := s.accept(ctx, tenant, f, features, idem)
		if err != nil {
			return nil, err
		}
		images[i] = img
	}
	// Free the bytes, and the request's upload slot, before a possibly
	// long wait: the upload is done, only its results are awaited.
	files = nil
	releaseUploadSlot(ctx)

	if wait > 0 && !allTerminal(images) {
		images = s.await(ctx, tenant, images, wait)
	}

	out := &uploadOutput{Status: http.StatusAccepted}
	if allTerminal(images) {
		out.Status = http.StatusOK
	}
	if len(images) == 1 {
		out.Location = "/v1/images/" + images[0].ID
		out.Body = images[0]
	} else {
		out.Body = ImageList{Images: images}
	}
	return out, nil
}

// accept stores one validated file and enqueues its job: blob first, then
// the row, then the publish, so that a 2xx means nothing can be lost. An
// image already known (same bytes, or same Idempotency-Key) is returned as
// it is, re-published if it is still queued; asked for features it was not
// analysed for, it is analysed again for all of them (see widen).
func (s *Server) accept(ctx context.Context, tenant string, f upload, features []job.Feature, idem string) (*job.Image, error) {
	sha := f.sha
	if sha == "" {
		sha = job.ContentHash(f.data)
	}
	id := job.NewImageID(tenant, sha, idem)

	img, err := s.deps.Store.GetImage(ctx, tenant, id)
	switch {
	case err == nil:
		if idem != "" && img.SHA256 != sha {
			return nil, errIdempotencyReuse()
		}
		switch img, err = s.widen(ctx, img, features, idem); {
		case errors.Is(err, errWidenGone):
			img = nil // deleted meanwhile: this upload makes it anew
		case err != nil:
			return nil, err
		}
	case errors.Is(err, store.ErrNotFound):
		img = nil
	default:
		return nil, s.internalErr(ctx, "looking up the image", err)
	}

	created := false
	if img == nil {
		if err := s.putInput(ctx, job.InputKey(tenant, id), f.data, f.hdr.ContentType, sha); err != nil {
			return nil, s.internalErr(ctx, "storing the image bytes", err)
		}
		w, h := f.hdr.DisplaySize()
		img, created, err = s.deps.Store.CreateImage(ctx, &job.Image{
			ID:          id,
			Tenant:      tenant,
			Filename:    f.name,
			ContentType: f.hdr.ContentType,
			Size:        int64(len(f.data)),
			SHA256:      sha,
			Width:       w,
			Height:      h,
			Features:    features,
			Status:      job.StatusQueued,
		})
		if err != nil {
			return nil, s.internalErr(ctx, "recording the image", err)
		}
		if !created && idem != "" && img.SHA256 != sha {
			// A concurrent request with the same key and other bytes won
			// the insert after both missed the lookup.
			s.log.LogAttrs(ctx, slog.LevelWarn, "web: idempotency key reused concurrently with different bytes",
				slog.String("image_id", id), slog.String("request_id", infoFrom(ctx).id))
			return nil, errIdempotencyReuse()
		}
		s.metrics.uploadBytes.Add(float64(len(f.data)))
	}

	if created || img.Status == job.StatusQueued {
		err := s.deps.Queue.Publish(ctx, job.Job{
			ImageID:     img.ID,
			Tenant:      tenant,
			BlobKey:     job.InputKey(tenant, img.ID),
			Filename:    img.Filename,
			ContentType: img.ContentType,
			Features:    img.Features,
			EnqueuedAt:  s.now().UTC(),
			// The row's birth names this life of the image (see job.Job).
			ImageCreatedAt: img.CreatedAt,
			// An image analysed before, now asked for more, numbers its
			// new attempts after the old ones.
			AttemptBase: img.Attempts,
		})
		if err != nil {
			s.log.LogAttrs(ctx, slog.LevelError, "web: publish job",
				slog.String("image_id", img.ID), slog.String("request_id", infoFrom(ctx).id), slog.Any("err", err))
			return nil, retryAfter(huma.Error503ServiceUnavailable(
				"the job queue is unavailable; the image is stored and will be processed, or retry the same request later"),
				publishRetryAfterSec)
		}
	}
	return img, nil
}

// widen asks an image already known for the features it lacks of features.
// A finished image goes back to queued for the union of its features and
// the new ones (its previous result stays readable until the new one
// commits), and accept publishes its job as it does a new image's. An image
// still queued or processing cannot be widened: its job is under way with
// its own list. That is a 409 asking the caller to send it again once the
// image has finished. A different list under the same Idempotency-Key is a
// 422, as different bytes are: the key names one request.
func (s *Server) widen(ctx context.Context, img *job.Image, features []job.Feature, idem string) (*job.Image, error) {
	for range 3 {
		union, widened := job.UnionFeatures(img.Features, features)
		if !widened {
			return img, nil
		}
		if err := widenRefusal(img, features, idem, ""); err != nil {
			return nil, err
		}
		got, ok, err := s.deps.Store.Reopen(ctx, img.Tenant, img.ID, img.Features, union)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return nil, errWidenGone
		case err != nil:
			return nil, s.internalErr(ctx, "asking the image for more features", err)
		case ok:
			s.log.LogAttrs(ctx, slog.LevelInfo, "web: image asked for more features",
				slog.String("image_id", img.ID), slog.String("features", job.FormatFeatures(union)))
			return got, nil
		}
		img = got // changed since it was read: look again
	}
	return nil, retryAfter(huma.Error409Conflict(fmt.Sprintf("image %s is changing under concurrent uploads; send it again", img.ID)), widenRetryAfterSec)
}

// errWidenGone is widen's answer when the image was deleted meanwhile.
var errWidenGone = errors.New("web: image deleted while asked for more features")

// widenRefusal says why image img cannot be asked for features now: while
// it is queued or processing (409), or when the features differ from what
// the same Idempotency-Key asked for (422). It is nil when it can be, or
// need not be. name, when not "", is the file's in a request of several.
func widenRefusal(img *job.Image, features []job.Feature, idem, name string) error {
	if _, widened := job.UnionFeatures(img.Features, features); !widened {
		return nil
	}
	prefix := ""
	if name != "" {
		prefix = fmt.Sprintf("file %q: ", name)
	}
	switch {
	case idem != "":
		return huma.Error422UnprocessableEntity(fmt.Sprintf(
			"%sthis Idempotency-Key was already used to ask for %s; use a new key to ask for %s (a new image)",
			prefix, job.FormatFeatures(img.Features), job.FormatFeatures(features)))
	case !img.Status.Terminal():
		return retryAfter(huma.Error409Conflict(fmt.Sprintf(
			"%simage %s is still %s for %s; send it again once it is done to add %s",
			prefix, img.ID, img.Status, job.FormatFeatures(img.Features), job.FormatFeatures(missing(img.Features, features)))),
			widenRetryAfterSec)
	}
	return nil
}

// missing returns the features of want that have lacks.
func missing(have, want []job.Feature) []job.Feature {
	var out []job.Feature
	for _, f := range want {
		if !slices.Contains(have, f) {
			out = append(out, f)
		}
	}
	return out
}

// widenRetryAfterSec is the Retry-After of a 409 for an image still being
// analysed: a labels job takes a few tens of milliseconds once started.
const widenRetryAfterSec = "1"

// maxDrain is how much of a refused upload's unread body drainBody reads.
const maxDrain = 16 << 20

// drainBody reads what is left of a request body refused part way with a
// 400 (a second file under an Idempotency-Key), up to maxDrain, so that the
// client, still sending, reads the answer: a server that answers and closes
// with the body unread makes the client's send fail with a reset, and the
// client never sees why. Refusals for size (413) stop reading at once, as
// the sender may be hostile.
func drainBody(body io.Reader) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, maxDrain))
}

// readImageBody reads a raw image body of the announced length (0 when
// unknown), cut off just past lim.MaxBytes. It reads into one buffer of the
// announced size instead of growing one by doubling (a 3 MB photo would be
// copied ~13 times); a wrong length only costs a regrowth.
func readImageBody(w http.ResponseWriter, body io.ReadCloser, length int64, lim imagedata.Limits) ([]byte, error) {
	var r io.Reader = http.MaxBytesReader(w, body, lim.MaxBytes+1)
	if length > 0 {
		r = sizedReader{r, length}
	}
	return imagedata.ReadAll(r, lim)
}

// sizedReader is a reader whose length is known in advance; imagedata.ReadAll
// sizes its buffer from Len.
type sizedReader struct {
	io.Reader
	n int64
}

func (r sizedReader) Len() int { return int(r.n) }

// putInput stores an upload's bytes, handing the blob store the content
// hash already computed when it can take it (*blobstore.Store can), so that
// large images are not hashed twice.
func (s *Server) putInput(ctx context.Context, key string, b []byte, contentType, sha string) error {
	if p, ok := s.deps.Blobs.(interface {
		PutDigest(ctx context.Context, key string, b []byte, contentType, digest string) error
	}); ok {
		return p.PutDigest(ctx, key, b, contentType, sha)
	}
	return s.deps.Blobs.Put(ctx, key, b, contentType)
}

// errIdempotencyReuse is the answer to an Idempotency-Key sent again with
// different bytes (as draft-ietf-httpapi-idempotency-key-header advises).
func errIdempotencyReuse() error {
	return huma.Error422UnprocessableEntity(
		"this Idempotency-Key was already used for a different image; use a new key for new content")
}

// allTerminal reports whether every image is done or failed.
func allTerminal(images []*job.Image) bool {
	for _, img := range images {
		if !img.Status.Terminal() {
			return false
		}
	}
	return true
}

// await waits until every image is terminal, d passes or the request ends,
// and returns the images as last read from the store. It subscribes to
// outcomes before reading, so a notification cannot slip between the read
// and the wait; a slow poll covers outcomes that never reach this process.
func (s *Server) await(ctx context.Context, tenant string, images []*job.Image, d time.Duration) []*job.Image {
	images = append([]*job.Image(nil), images...)
	ids := make([]string, len(images))
	for i, img := range images {
		ids[i] = img.ID
	}
	w := s.waiters.subscribe(ids)
	defer s.waiters.unsubscribe(w)

	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	poll := time.NewTicker(waitPollInterval)
	defer poll.Stop()
	for {
		for i, img := range images {
			if img.Status.Terminal() {
				continue
			}
			fresh, err := s.deps.Store.GetImage(ctx, tenant, img.ID)
			if err != nil {
				if ctx.Err() == nil {
					s.log.LogAttrs(ctx, slog.LevelWarn, "web: re-read image while waiting",
						slog.String("image_id", img.ID), slog.Any("err", err))
				}
				continue
			}
			images[i] = fresh
		}
		if allTerminal(images) {
			return images
		}
		select {
		case <-w.ch:
		case <-poll.C:
		case <-ctx.Done():
			return images
		case <-s.waiters.stopped:
			return images
		}
	}
}

// isMultipart reports whether r's Content-Type is multipart/form-data.
func isMultipart(r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt == "multipart/form-data"
}

// readUploads reads the files of an upload request, streaming and bounded:
// each file is cut off just past the byte limit, and the whole body at
// MaxFiles files plus some slack. single, when true, refuses a second file.
func (s *Server) readUploads(r *http.Request, w http.ResponseWriter, filename string, single bool) (files []upload, err error) {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil, huma.Error415UnsupportedMediaType("the request has no Content-Type; " + howToUpload)
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return nil, huma.Error415UnsupportedMediaType(fmt.Sprintf("the Content-Type %q cannot be parsed; %s", truncate(ct, 100), howToUpload))
	}
	lim := s.cfg.Limits
	if mt == "multipart/form-data" || strings.HasPrefix(mt, "image/") || mt == "application/octet-stream" {
		g := newBodyGuard(w, r.Body, lim)
		defer func() { g.release(err) }()
		r.Body = g
	}
	switch {
	case mt == "multipart/form-data":
		total := int64(s.cfg.MaxFiles)*(lim.MaxBytes+perPartSlack) + multipartSlack
		if r.ContentLength > total {
			return nil, huma.Error413RequestEntityTooLarge(fmt.Sprintf(
				"the request body is %d bytes; the limit is %d files of %d bytes each", r.ContentLength, s.cfg.MaxFiles, lim.MaxBytes))
		}
		boundary := params["boundary"]
		if boundary == "" {
			return nil, huma.Error400BadRequest("malformed multipart body: the Content-Type has no boundary")
		}
		body := http.MaxBytesReader(w, r.Body, total)
		return s.readMultipart(multipart.NewReader(body, boundary), single)

	case strings.HasPrefix(mt, "image/") || mt == "application/octet-stream":
		if r.ContentLength > lim.MaxBytes {
			return nil, huma.Error413RequestEntityTooLarge(fmt.Sprintf(
				"the image is %s", imagedata.SizeAndLimit(r.ContentLength, lim.MaxBytes)))
		}
		data, err := readImageBody(w, r.Body, r.ContentLength, lim)
		if err != nil {
			return nil, readErr(false, "", err)
		}
		if filename == "" {
			if _, p, err := mime.ParseMediaType(r.Header.Get("Content-Disposition")); err == nil {
				filename = p["filename"]
			}
		}
		return []upload{{name: sanitizeFilename(filename), data: data}}, nil

	default:
		return nil, huma.Error415UnsupportedMediaType(fmt.Sprintf("Content-Type %q is not accepted; %s", truncate(mt, 100), howToUpload))
	}
}

// readMultipart reads the parts named "file" of a multipart body; other
// parts are skipped.
func (s *Server) readMultipart(mr *multipart.Reader, single bool) ([]upload, error) {
	var files []upload
	maxParts := s.cfg.MaxFiles + maxOtherParts
	for parts := 0; ; parts++ {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, readErr(true, "", err)
		}
		if parts == maxParts {
			_ = part.Close()
			return nil, huma.Error413RequestEntityTooLarge(fmt.Sprintf(
				"too many multipart parts: at most %d per request (%d files and %d other fields)",
				maxParts, s.cfg.MaxFiles, maxOtherParts))
		}
		if part.FormName() != "file" {
			_ = part.Close()
			continue
		}
		if len(files) == s.cfg.MaxFiles {
			return nil, huma.Error413RequestEntityTooLarge(fmt.Sprintf(
				"too many files: at most %d per request; send the rest in another request", s.cfg.MaxFiles))
		}
		if single && len(files) == 1 {
			return nil, huma.Error400BadRequest("Idempotency-Key applies to a single file; send one file per request when using it")
		}
		name := sanitizeFilename(part.FileName())
		data, err := imagedata.ReadAll(part, s.cfg.Limits)
		_ = part.Close()
		if err != nil {
			return nil, readErr(true, name, err)
		}
		files = append(files, upload{name: name, data: data})
	}
	if len(files) == 0 {
		return nil, huma.Error400BadRequest("the multipart body has no file part; " + howToUpload)
	}
	return files, nil
}

// readErr turns an error met while reading the body into a problem; name
// is the file being read from a multipart body, if any.
func readErr(multipart bool, name string, err error) error {
	var slow *slowBodyError
	if errors.As(err, &slow) {
		return huma.NewError(http.StatusRequestTimeout, slow.Error())
	}
	if mbe, ok := errorsAsMaxBytes(err); ok {
		return huma.Error413RequestEntityTooLarge(fmt.Sprintf("the request body is larger than %s", imagedata.FormatBytes(mbe.Limit)))
	}
	var ie *imagedata.Error
	if errors.As(err, &ie) {
		return imagedataErr(name, err)
	}
	why := strings.TrimPrefix(err.Error(), "imagedata: ")
	if multipart {
		what := "the multipart body"
		if name != "" {
			what = fmt.Sprintf("file %q", name)
		}
		return huma.Error400BadRequest(fmt.Sprintf("could not read %s (malformed multipart body or interrupted upload): %s", what, why))
	}
	return huma.Error400BadRequest(fmt.Sprintf("could not read the request body (interrupted upload?): %s", why))
}

// sanitizeFilename keeps the last path element of name, drops control and
// quoting characters and bounds its length; "" becomes "upload".
func sanitizeFilename(name string) string {
	name = strings.ReplaceAll(name, `\`, "/")
	name = path.Base(name)
	name = strings.Map(func(r rune) rune {
		switch {
		case r == utf8.RuneError, unicode.IsControl(r), r == '"', r == '/':
			return -1
		}
		return r
	}, name)
	name = strings.TrimSpace(name)
	if len(name) > maxFilename {
		name = truncate(name, maxFilename)
		name = strings.TrimSuffix(name, "…")
	}
	if name == "" || name == "." || name == ".." {
		return defaultFilename
	}
	return name
}

// bodyGuard cuts off a request body that arrives too slowly. Before each
// Read it sets the connection's read deadline to lim.BodyDeadline: the time
// allowed grows with every byte received, so a fast upload of any size
// completes while a client trickling bytes (which would hold a request
// goroutine, its buffers and any concurrency slot) is cut off after about
// BodyTimeout. A Read that hits the deadline returns a *slowBodyError.
//
// Where the connection offers no read deadline (a ResponseWriter that
// http.ResponseController cannot reach through), the guard does nothing.
type bodyGuard struct {
	body  io.ReadCloser
	rc    *http.ResponseController
	lim   imagedata.Limits
	start time.Time
	n     int64
	armed bool
}

func newBodyGuard(w http.ResponseWriter, body io.ReadCloser, lim imagedata.Limits) *bodyGuard {
	g := &bodyGuard{body: body, lim: lim, start: time.Now()}
	if lim.BodyTimeout > 0 && w != nil {
		g.rc = http.NewResponseController(w)
		g.armed = g.rc.SetReadDeadline(lim.BodyDeadline(g.start, 0)) == nil
	}
	return g
}

func (g *bodyGuard) Read(p []byte) (int, error) {
	if g.armed {
		_ = g.rc.SetReadDeadline(g.lim.BodyDeadline(g.start, g.n))
	}
	n, err := g.body.Read(p)
	g.n += int64(n)
	if err != nil && g.armed && errors.Is(err, os.ErrDeadlineExceeded) {
		return n, &slowBodyError{n: g.n, took: time.Since(g.start), lim: g.lim}
	}
	return n, err
}

func (g *bodyGuard) Close() error { return g.body.Close() }

// release clears the deadline once the body is read without error, so that
// a request that then waits (?wait=) is not cut off by the server's
// background read. After an error the deadline stays: the server discards
// what is left of a small body before it answers, and a trickler must not
// hold that up either.
func (g *bodyGuard) release(err error) {
	if g.armed && err == nil {
		_ = g.rc.SetReadDeadline(time.Time{})
	}
}

// slowBodyError reports a body cut off by a bodyGuard (HTTP 408).
type slowBodyError struct {
	n    int64
	took time.Duration
	lim  imagedata.Limits
}

func (e *slowBodyError) Error() string {
	return fmt.Sprintf("the upload arrived too slowly: %d bytes in %s; the limit is %s",
		e.n, e.took.Round(time.Millisecond), e.lim.DescribeBodyTimeout())
}
