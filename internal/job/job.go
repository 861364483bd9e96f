// Package job holds Glimpse's domain types: images, the jobs that process them,
// their results and the features a caller can ask for. It does no I/O.
package job

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Status is where an image is in its life.
type Status string

// The statuses an image moves through. queued → processing → done | failed;
// a redelivered job may go processing → queued → processing again.
const (
	StatusQueued     Status = "queued"
	StatusProcessing Status = "processing"
	StatusDone       Status = "done"
	StatusFailed     Status = "failed"
)

// Valid reports whether s is one of the known statuses.
func (s Status) Valid() bool {
	switch s {
	case StatusQueued, StatusProcessing, StatusDone, StatusFailed:
		return true
	}
	return false
}

// Terminal reports whether no more work will happen for an image in status s.
func (s Status) Terminal() bool { return s == StatusDone || s == StatusFailed }

// Feature names one kind of analysis a caller can ask for.
type Feature string

// The features a caller can ask for.
const (
	FeatureLabels    Feature = "labels"    // ImageNet classification (the default)
	FeatureQR        Feature = "qr"        // QR codes and 1-D barcodes
	FeatureEXIF      Feature = "exif"      // time taken, GPS position, camera
	FeatureFaces     Feature = "faces"     // face boxes
	FeatureColors    Feature = "colors"    // dominant colours, brightness, histogram
	FeatureQuality   Feature = "quality"   // sharpness, contrast, entropy, exposure
	FeaturePHash     Feature = "phash"     // 64-bit perceptual hash for near-duplicates
	FeatureThumbnail Feature = "thumbnail" // a small stored copy
)

// Features lists every feature this build knows, in a stable order.
var Features = []Feature{FeatureLabels, FeatureQR, FeatureEXIF, FeatureFaces, FeatureColors, FeatureQuality, FeaturePHash, FeatureThumbnail}

// DefaultFeatures is what a caller gets when it names none.
var DefaultFeatures = []Feature{FeatureLabels}

// ParseFeatures parses a comma-separated feature list such as "labels,qr".
// An empty string gives DefaultFeatures and "all" gives every feature.
// Names are trimmed and de-duplicated; the result is sorted. An unknown name
// is an error that lists the valid ones.
func ParseFeatures(s string) ([]Feature, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return append([]Feature(nil), DefaultFeatures...), nil
	}
	seen := map[Feature]bool{}
	var unknown []string
	for _, part := range strings.Split(s, ",") {
		name := Feature(strings.ToLower(strings.TrimSpace(part)))
		switch {
		case name == "":
			continue
		case name == "all":
			for _, f := range Features {
				seen[f] = true
			}
		case known(name):
			seen[name] = true
		default:
			unknown = append(unknown, string(name))
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("unknown feature %s; valid features are %s (or all)",
			quoteList(unknown), quoteList(featureNames()))
	}
	if len(seen) == 0 {
		return append([]Feature(nil), DefaultFeatures...), nil
	}
	out := make([]Feature, 0, len(seen))
	for f := range seen {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// TenantRule says what a tenant name may be; ValidTenant checks it. A tenant
// names a directory of the blob store (inputs/<tenant>/…) and a segment of
// queue subjects, so it is a plain path segment.
const TenantRule = "1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"

var validTenant = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidTenant reports whether s is a usable tenant name (TenantRule).
func ValidTenant(s string) bool { return validTenant.MatchString(s) }

// UnionFeatures returns the sorted union of have and want, as ParseFeatures
// sorts, and whether want names a feature that have lacks.
func UnionFeatures(have, want []Feature) (union []Feature, widened bool) {
	union = append([]Feature(nil), have...)
	for _, f := range want {
		if !slices.Contains(union, f) {
			union = append(union, f)
			widened = true
		}
	}
	slices.Sort(union)
	return union, widened
}

// FormatFeatures joins features with commas, the inverse of ParseFeatures.
func FormatFeatures(fs []Feature) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = string(f)
	}
	return strings.Join(parts, ",")
}

func known(f Feature) bool {
	for _, k := range Features {
		if k == f {
			return true
		}
	}
	return false
}

func featureNames() []string {
	names := make([]string, len(Features))
	for i, f := range Features {
		names[i] = string(f)
	}
	return names
}

func quoteList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = fmt.Sprintf("%q", x)
	}
	return strings.Join(q, ", ")
}

// Label is one class the classifier saw, with its softmax probability.
type Label struct {
	Label string  `json:"label" doc:"Class name" example:"Egyptian cat"`
	Score float64 `json:"score" doc:"Softmax probability in [0,1]" example:"0.67"`
}

// Result is everything the analyzers found in one image. Each requested
// feature has its own field; a feature whose analyzer failed has an entry in
// Errors instead, and the others still report.
type Result struct {
	Labels []Label `json:"labels,omitempty" doc:"ImageNet labels, highest score first"`
	// Width and Height are the image's display size after EXIF orientation.
	Width  int `json:"width,omitempty" doc:"Display width in pixels (after EXIF orientation)"`
	Height int `json:"height,omitempty" doc:"Display height in pixels (after EXIF orientation)"`
	// Model names the classifier that produced Labels.
	Model     string     `json:"model,omitempty" doc:"Classifier model name"`
	QR        []Code     `json:"qr,omitzero" doc:"QR codes and barcodes found"`
	EXIF      *EXIF      `json:"exif,omitempty" doc:"When, where and with what the photo was taken; {} when the image has no such metadata"`
	Faces     []Face     `json:"faces,omitzero" doc:"Face boxes in display pixels"`
	Colors    *Colors    `json:"colors,omitempty" doc:"Dominant colours and brightness"`
	Quality   *Quality   `json:"quality,omitempty" doc:"Sharpness, contrast, entropy, exposure"`
	PHash     string     `json:"phash,omitempty" doc:"64-bit perceptual hash, 16 hex digits" example:"c3a1f0e08c0f1e3c"`
	Thumbnail *Thumbnail `json:"thumbnail,omitempty" doc:"Stored small copy, served at /v1/images/{id}/thumbnail"`
	// Errors maps a feature to why its analyzer gave no answer.
	Errors map[Feature]string `json:"errors,omitempty" doc:"Per-feature errors; other features still report"`
}

// Image is one uploaded image and what is known of it.
type Image struct {
	ID          string     `json:"id"`
	Tenant      string     `json:"-"`
	Filename    string     `json:"filename"`
	ContentType string     `json:"content_type"`
	Size        int64      `json:"size"`
	SHA256      string     `json:"sha256"`
	Width       int        `json:"width,omitempty"`
	Height      int        `json:"height,omitempty"`
	Features    []Feature  `json:"features"`
	Status      Status     `json:"status" enum:"queued,processing,done,failed"`
	Error       string     `json:"error,omitempty"`
	Attempts    int        `json:"attempts"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	StartedAt   *time.Time `json:"started_at,omitempty"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
	Result      *Result    `json:"result,omitempty"`
}

// Job is the message a worker takes from the queue: enough to find the
// image's bytes and know what to compute. It is JSON on the wire.
type Job struct {
	ImageID     string    `json:"image_id"`
	Tenant      string    `json:"tenant"`
	BlobKey     string    `json:"blob_key"`
	Filename    string    `json:"filename,omitempty"`
	ContentType string    `json:"content_type,omitempty"`
	Features    []Feature `json:"features"`
	EnqueuedAt  time.Time `json:"enqueued_at"`
	// ImageCreatedAt is when the image's row was created. With the image id
	// and the features it names this life of the image: a retried upload
	// publishes the same job again (and the queue drops the duplicate),
	// while the same bytes uploaded again after a delete, or asked for more
	// features once analysed, are a new job.
	ImageCreatedAt time.Time `json:"image_created_at,omitzero"`
	// AttemptBase is added to the queue's delivery count to number this
	// job's attempts in the store. A job re-published by the reconciler
	// starts its deliveries at 1 again, while the image may already record
	// later attempts; the base keeps its attempts newer than those.
	AttemptBase int `json:"attempt_base,omitempty"`
}

// MessageID is the queue's de-duplication id for j.
func (j Job) MessageID() string {
	id := j.ImageID
	if !j.ImageCreatedAt.IsZero() {
		id += "." + strconv.FormatInt(j.ImageCreatedAt.UnixMicro(), 10)
	}
	return id + "." + FormatFeatures(j.Features)
}

// Outcome is the message published on the results stream once an image
// reaches a terminal status. It is JSON on the wire.
type Outcome struct {
	ImageID    string    `json:"image_id"`
	Tenant     string    `json:"tenant"`
	Status     Status    `json:"status"`
	Error      string    `json:"error,omitempty"`
	Result     *Result   `json:"result,omitempty"`
	FinishedAt time.Time `json:"finished_at"`
}

// ContentHash is the hex SHA-256 of b.
func ContentHash(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// NewImageID derives an image's id. It is deterministic so that a retried
// upload maps to the same image: from the idempotency key when the caller sent
// one, otherwise from the content hash, always within the tenant.
func NewImageID(tenant, contentSHA256, idempotencyKey string) string {
	h := sha256.New()
	h.Write([]byte(tenant))
	h.Write([]byte{0})
	if idempotencyKey != "" {
		h.Write([]byte("key:"))
		h.Write([]byte(idempotencyKey))
	} else {
		h.Write([]byte("sha256:"))
		h.Write([]byte(contentSHA256))
	}
	return "img_" + hex.EncodeToString(h.Sum(nil))[:24]
}

// ValidID reports whether s has the shape of an image id, so that handlers
// can refuse garbage before touching storage.
func ValidID(s string) bool {
	if len(s) != 28 || !strings.HasPrefix(s, "img_") {
		return false
	}
	for _, c := range s[4:] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// InputKey is the blob key of an image's original bytes.
func InputKey(tenant, id string) string { return "inputs/" + tenant + "/" + id }

// ResultKey is the blob key of an image's result JSON.
func ResultKey(id string) string { return "results/" + id + ".json" }

// ThumbnailKey is the blob key of an image's thumbnail.
func ThumbnailKey(id string) string { return "thumbnails/" + id + ".jpg" }
