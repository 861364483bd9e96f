package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"syscall"
	"time"

	"github.com/glimpse-oss/glimpse/internal/job"
)

// Status is how one image's request ended.
type Status string

// The ways a request ends.
const (
	StatusDone   Status = "done"   // the image was processed
	StatusFailed Status = "failed" // the server accepted it but it ended failed
	StatusError  Status = "error"  // an HTTP or transport error; no answer
)

// Result is what happened to one image.
type Result struct {
	Name   string `json:"image"`
	ID     string `json:"id,omitempty"`
	Status Status `json:"status"`
	// ErrorKind groups errors: "http 503", "failed: <reason>",
	// "transport: timeout"; Error has the detail.
	ErrorKind string `json:"error_kind,omitempty"`
	Error     string `json:"error,omitempty"`
	// Latency is from the scheduled send to the answer. Upload is the
	// upload request's round trip (in sync mode, less the server's queue
	// and processing time); QueueWait and Processing come from the image's
	// timestamps. A phase not measured is -1.
	Latency    time.Duration `json:"-"`
	Upload     time.Duration `json:"-"`
	QueueWait  time.Duration `json:"-"`
	Processing time.Duration `json:"-"`
	Result     *job.Result   `json:"result,omitempty"`
	Want       *Expected     `json:"-"`
}

// MarshalJSON adds the durations in milliseconds.
func (r Result) MarshalJSON() ([]byte, error) {
	type plain Result
	ms := func(d time.Duration) *float64 {
		if d < 0 {
			return nil
		}
		v := float64(d.Microseconds()) / 1e3
		return &v
	}
	return json.Marshal(struct {
		plain
		Latency    *float64 `json:"latency_ms,omitempty"`
		Upload     *float64 `json:"upload_ms,omitempty"`
		QueueWait  *float64 `json:"queue_wait_ms,omitempty"`
		Processing *float64 `json:"processing_ms,omitempty"`
	}{plain(r), ms(r.Latency), ms(r.Upload), ms(r.QueueWait), ms(r.Processing)})
}

// problem is an RFC 9457 problem document.
type problem struct {
	Title  string `json:"title"`
	Detail string `json:"detail"`
}

// client talks to one Glimpse server.
type client struct {
	base     *url.URL
	http     *http.Client
	apiKey   string
	features string
	wait     time.Duration
	pollMin  time.Duration
	pollMax  time.Duration
	unique   string // Idempotency-Key prefix, "" to let the server dedupe by content
}

// send uploads one image and follows it to its end. start is when it was
// scheduled; seq numbers the request within the run.
func (c *client) send(ctx context.Context, it Item, start time.Time, seq int) Result {
	r := Result{Name: it.Name, Want: it.Want, Upload: -1, QueueWait: -1, Processing: -1}
	fail := func(kind, detail string) Result {
		r.Status, r.ErrorKind, r.Error = StatusError, kind, detail
		r.Latency = time.Since(start)
		return r
	}

	q := url.Values{}
	if c.features != "" {
		q.Set("features", c.features)
	}
	if c.wait > 0 {
		q.Set("wait", c.wait.String())
	}
	q.Set("filename", path.Base(strings.ReplaceAll(it.Name, `\`, "/")))
	u := c.base.JoinPath("v1", "images")
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(it.Data))
	if err != nil {
		return fail("request", err.Error())
	}
	ct := http.DetectContentType(it.Data)
	if !strings.HasPrefix(ct, "image/") {
		ct = "application/octet-stream"
	}
	req.Header.Set("Content-Type", ct)
	if c.unique != "" {
		req.Header.Set("Idempotency-Key", fmt.Sprintf("%s-%d", c.unique, seq))
	}
	c.auth(req)

	sent := time.Now()
	var img job.Image
	status, err := c.do(req, &img)
	upload := time.Since(sent)
	if err != nil {
		return fail(transportKind(err), err.Error())
	}
	if status != http.StatusOK && status != http.StatusAccepted {
		return fail(fmt.Sprintf("http %d", status), img.Error)
	}
	r.ID = img.ID
	if img.ID == "" {
		return fail("protocol", "the upload answer has no image id")
	}
	if c.wait > 0 && img.Status.Terminal() && img.FinishedAt != nil {
		upload -= max(0, img.FinishedAt.Sub(img.CreatedAt))
	}
	r.Upload = max(0, upload)

	poll := c.pollMin
	for !img.Status.Terminal() {
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return fail(transportKind(ctx.Err()), fmt.Sprintf("image %s still %s: %v", img.ID, img.Status, ctx.Err()))
		case <-t.C:
		}
		poll = min(2*poll, c.pollMax)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base.JoinPath("v1", "images", img.ID).String(), nil)
		if err != nil {
			return fail("request", err.Error())
		}
		c.auth(req)
		var fresh job.Image
		status, err := c.do(req, &fresh)
		switch {
		case err != nil && ctx.Err() == nil && isTemporary(err):
			continue // a dropped poll; the next one may get through
		case err != nil:
			return fail(transportKind(err), err.Error())
		case status != http.StatusOK:
			return fail(fmt.Sprintf("poll http %d", status), fresh.Error)
		}
		img = fresh
	}

	r.Latency = time.Since(start)
	if img.StartedAt != nil {
		r.QueueWait = max(0, img.StartedAt.Sub(img.CreatedAt))
		if img.FinishedAt != nil {
			r.Processing = max(0, img.FinishedAt.Sub(*img.StartedAt))
		}
	}
	r.Result = img.Result
	if img.Status == job.StatusFailed {
		r.Status, r.ErrorKind, r.Error = StatusFailed, "failed: "+failReason(img.Error), img.Error
		return r
	}
	r.Status = StatusDone
	return r
}

func (c *client) auth(req *http.Request) {
	if c.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.apiKey)
	}
}

// do sends req and decodes a JSON image into img; on an HTTP error it puts
// the problem's detail (or the status text) in img.Error.
func (c *client) do(req *http.Request, img *job.Image) (int, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return 0, err
	}
	if resp.StatusCode >= 300 {
		var p problem
		if json.Unmarshal(body, &p) == nil && (p.Detail != "" || p.Title != "") {
			img.Error = p.Detail
			if img.Error == "" {
				img.Error = p.Title
			}
		} else {
			img.Error = http.StatusText(resp.StatusCode)
		}
		return resp.StatusCode, nil
	}
	if err := json.Unmarshal(body, img); err != nil {
		return resp.StatusCode, fmt.Errorf("decoding the answer: %w", err)
	}
	return resp.StatusCode, nil
}

// failReason shortens a failed image's error to a groupable kind: its first
// clause, at most 60 characters.
func failReason(s string) string {
	if i := strings.IndexAny(s, ":;\n"); i > 0 {
		s = s[:i]
	}
	if len(s) > 60 {
		s = s[:60]
	}
	if s == "" {
		s = "no reason given"
	}
	return s
}

// transportKind names a transport error's kind.
func transportKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return "transport: timeout"
	case errors.Is(err, context.Canceled):
		return "transport: canceled"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "transport: connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "transport: connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "transport: connection closed"
	case strings.HasPrefix(err.Error(), "decoding the answer"):
		return "protocol"
	}
	return "transport: other"
}

// isTemporary reports whether a poll error is worth another try.
func isTemporary(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}
