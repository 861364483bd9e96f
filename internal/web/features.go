package web

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/glimpse-oss/glimpse/internal/job"
	"github.com/glimpse-oss/glimpse/internal/store"
)

// FeatureQuery holds the list filters on analyzer results. Like the other list
// parameters they are strings, validated here so that a bad value is a 400
// that says what was expected.
type FeatureQuery struct {
	QRURL       string `query:"qr_url" doc:"Only images with a code (QR or barcode) whose text is a URL starting with this (scheme and host in any case); any of an image's codes may match" example:"https://shop.example/p/"`
	TakenAfter  string `query:"taken_after" doc:"Only photos taken at or after this time (RFC 3339 or a date)" example:"2024-05-01"`
	TakenBefore string `query:"taken_before" doc:"Only photos taken before this time (RFC 3339 or a date)" example:"2024-06-01T00:00:00Z"`
	Near        string `query:"near" doc:"Only photos taken within KM kilometres (great-circle distance) of LAT,LON: lat,lon,km" example:"48.8584,2.2945,25"`
	HasFaces    string `query:"has_faces" doc:"true: only images with faces; false: only images where no face was found" example:"true"`
}

// apply validates q and sets its filters on opt.
func (q FeatureQuery) apply(opt *store.ListOptions) error {
	opt.QRURL = strings.TrimSpace(q.QRURL)
	for _, p := range []struct {
		name, val string
		dst       *time.Time
	}{{"taken_after", q.TakenAfter, &opt.TakenAfter}, {"taken_before", q.TakenBefore, &opt.TakenBefore}} {
		if p.val == "" {
			continue
		}
		t, err := parseTimeParam(p.val)
		if err != nil {
			msg := fmt.Sprintf("%s must be an RFC 3339 time (2024-05-17T14:03:11Z) or a date (2024-05-17), not %q", p.name, truncate(p.val, 64))
			if strings.Contains(p.val, " ") {
				// A + of an offset arrives as a space unless it is
				// percent-encoded.
				msg += "; write a + in an offset as %2B"
			}
			return huma.Error400BadRequest(msg)
		}
		*p.dst = t
	}
	if !opt.TakenAfter.IsZero() && !opt.TakenBefore.IsZero() && !opt.TakenAfter.Before(opt.TakenBefore) {
		return huma.Error400BadRequest(fmt.Sprintf("taken_after (%s) must be before taken_before (%s)",
			truncate(q.TakenAfter, 64), truncate(q.TakenBefore, 64)))
	}
	if q.Near != "" {
		n, err := parseNear(q.Near)
		if err != nil {
			return huma.Error400BadRequest(err.Error())
		}
		opt.Near = n
	}
	if q.HasFaces != "" {
		b, err := strconv.ParseBool(q.HasFaces)
		if err != nil {
			return huma.Error400BadRequest(fmt.Sprintf("has_faces must be true or false, not %q", truncate(q.HasFaces, 64)))
		}
		opt.HasFaces = &b
	}
	return nil
}

// encode adds the filters to a next-page link.
func (q FeatureQuery) encode(v url.Values) {
	for k, val := range map[string]string{"qr_url": q.QRURL, "taken_after": q.TakenAfter, "taken_before": q.TakenBefore, "near": q.Near, "has_faces": q.HasFaces} {
		if val != "" {
			v.Set(k, val)
		}
	}
}

func parseTimeParam(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Parse(time.DateOnly, s)
}

func parseNear(s string) (*store.Near, error) {
	parts := strings.Split(s, ",")
	bad := fmt.Errorf("near must be lat,lon,km (e.g. 48.8584,2.2945,25) with -90 ≤ lat ≤ 90, -180 ≤ lon ≤ 180 and 0 < km ≤ 20000, not %q", truncate(s, 64))
	if len(parts) != 3 {
		return nil, bad
	}
	var v [3]float64
	for i, p := range parts {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || math.IsNaN(f) {
			return nil, bad
		}
		v[i] = f
	}
	if v[0] < -90 || v[0] > 90 || v[1] < -180 || v[1] > 180 || v[2] <= 0 || v[2] > 20000 {
		return nil, bad
	}
	return &store.Near{Lat: v[0], Lon: v[1], Km: v[2]}, nil
}

// similarInput is GET /v1/images/{id}/similar.
type similarInput struct {
	ID          string `path:"id" doc:"Image id"`
	MaxDistance string `query:"max_distance" doc:"Largest Hamming distance between perceptual hashes, 0 to 64 (default 10)" example:"10"`
	Limit       string `query:"limit" doc:"At most this many, 1 to 1000 (default 50)" example:"50"`
}

// SimilarImage is one near-duplicate.
type SimilarImage struct {
	Distance int        `json:"distance" doc:"Hamming distance between the perceptual hashes (0 = same picture)"`
	Image    *job.Image `json:"image"`
}

// SimilarList answers GET /v1/images/{id}/similar.
type SimilarList struct {
	Images []SimilarImage `json:"images"`
}

type similarOutput struct {
	Body SimilarList
}

type thumbnailOutput struct {
	ContentType  string `header:"Content-Type"`
	CacheControl string `header:"Cache-Control"`
	Body         []byte
}

func (s *Server) registerFeatureRoutes(auth huma.Middlewares, sec []map[string][]string, errs []int) {
	huma.Register(s.api, huma.Operation{
		OperationID: "similar-images",
		Method:      http.MethodGet,
		Path:        "/v1/images/{id}/similar",
		Summary:     "List near-duplicates of an image",
		Description: "Images of the caller's tenant whose 64-bit perceptual hash (feature `phash`) is within " +
			"`max_distance` bits of this image's, nearest first. Exact duplicates never appear: the same bytes are " +
			"the same image. An image not analysed for `phash` (or not yet) has no hash to compare: that is a 409 " +
			"saying so; sending the same bytes again with `features=phash` adds it.",
		Tags:        []string{"images"},
		Security:    sec,
		Middlewares: auth,
		Errors:      append([]int{http.StatusBadRequest, http.StatusConflict}, errs...),
	}, s.similar)

	huma.Register(s.api, huma.Operation{
		OperationID: "get-image-thumbnail",
		Method:      http.MethodGet,
		Path:        "/v1/images/{id}/thumbnail",
		Summary:     "Download an image's thumbnail",
		Description: "The small JPEG made when the image was analysed with feature `thumbnail`; 404 otherwise.",
		Tags:        []string{"images"},
		Security:    sec,
		Middlewares: auth,
		Errors:      errs,
		Responses: map[string]*huma.Response{
			"200": {Description: "The thumbnail", Content: map[string]*huma.MediaType{
				"image/jpeg": {Schema: &huma.Schema{Type: "string", ContentEncoding: "binary"}},
			}},
		},
	}, s.thumbnail)
}

func (s *Server) similar(ctx context.Context, in *similarInput) (*similarOutput, error) {
	maxDist, limit := 10, 50
	if in.MaxDistance != "" {
		n, err := strconv.Atoi(in.MaxDistance)
		if err != nil || n < 0 || n > 64 {
			return nil, huma.Error400BadRequest(fmt.Sprintf("max_distance must be a whole number from 0 to 64, not %q", truncate(in.MaxDistance, 64)))
		}
		maxDist = n
	}
	if in.Limit != "" {
		n, err := strconv.Atoi(in.Limit)
		if err != nil || n < 1 || n > 1000 {
			return nil, huma.Error400BadRequest(fmt.Sprintf("limit must be a whole number from 1 to 1000, not %q", truncate(in.Limit, 64)))
		}
		limit = n
	}
	img, err := s.lookup(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	if img.Result == nil || img.Result.PHash == "" {
		err := huma.Error409Conflict(fmt.Sprintf(
			"image %q has no perceptual hash, so no near-duplicates to list: %s", img.ID, missingFeature(img, job.FeaturePHash)))
		if slices.Contains(img.Features, job.FeaturePHash) && !img.Status.Terminal() {
			return nil, retryAfter(err, widenRetryAfterSec) // the hash is on its way
		}
		return nil, err
	}
	sims, err := s.deps.Store.SimilarImages(ctx, tenantOf(ctx), in.ID, maxDist, limit)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errImageNotFound(in.ID)
	}
	if err != nil {
		return nil, s.internalErr(ctx, "finding similar images", err)
	}
	out := &similarOutput{Body: SimilarList{Images: make([]SimilarImage, 0, len(sims))}}
	for _, sm := range sims {
		out.Body.Images = append(out.Body.Images, SimilarImage{Distance: sm.Distance, Image: sm.Image})
	}
	return out, nil
}

// missingFeature says why img has no answer for feature f, and how to get
// one.
func missingFeature(img *job.Image, f job.Feature) string {
	switch {
	case slices.Contains(img.Features, f) && !img.Status.Terminal():
		return fmt.Sprintf("it is %s; ask again once it is done", img.Status)
	case slices.Contains(img.Features, f) && img.Status == job.StatusFailed:
		return "its analysis failed: " + img.Error
	case slices.Contains(img.Features, f):
		why := "no reason recorded"
		if img.Result != nil && img.Result.Errors[f] != "" {
			why = img.Result.Errors[f]
		}
		return fmt.Sprintf("%s failed (%s)", f, why)
	case job.NewImageID(img.Tenant, img.SHA256, "") != img.ID:
		// Its id came from an Idempotency-Key, which names one request.
		return fmt.Sprintf("it was not asked for %[1]s, and as it was uploaded with an Idempotency-Key it keeps the features of that request; "+
			"upload the bytes again with features=%[1]s (without the key, or with a new one) for an image that has it", f)
	default:
		return fmt.Sprintf("it was not asked for %[1]s; send the same image again with features=%[1]s to add it", f)
	}
}

func (s *Server) thumbnail(ctx context.Context, in *imageInput) (*thumbnailOutput, error) {
	img, err := s.lookup(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	if img.Result == nil || img.Result.Thumbnail == nil {
		return nil, huma.Error404NotFound(fmt.Sprintf("image %q has no thumbnail: %s", img.ID, missingFeature(img, job.FeatureThumbnail)))
	}
	b, err := s.deps.Blobs.Get(ctx, job.ThumbnailKey(img.ID))
	if s.deps.IsBlobNotFound(err) {
		return nil, huma.Error404NotFound(fmt.Sprintf("the thumbnail of image %q is gone", img.ID))
	}
	if err != nil {
		return nil, s.internalErr(ctx, "reading the thumbnail", err)
	}
	return &thumbnailOutput{ContentType: "image/jpeg", CacheControl: "private, max-age=86400", Body: b}, nil
}
