package store

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/glimpse-oss/glimpse/internal/job"
)

func ptr[T any](v T) *T { return &v }

// doneWith takes image n of tenant through to done with res.
func doneWith(t *testing.T, db *DB, tenant string, n int, res *job.Result) string {
	t.Helper()
	ctx := context.Background()
	img := mustCreate(t, db, testImage(tenant, n))
	if ok, err := db.MarkProcessing(ctx, img.ID, 1, nil); !ok || err != nil {
		t.Fatalf("MarkProcessing = %v, %v", ok, err)
	}
	if ok, err := db.SaveResult(ctx, img.ID, 1, nil, res); !ok || err != nil {
		t.Fatalf("SaveResult = %v, %v", ok, err)
	}
	return img.ID
}

func testFeatureFilters(t *testing.T, db *DB) {
	ctx := context.Background()
	paris := doneWith(t, db, "a", 1, &job.Result{
		QR:    []job.Code{{Text: "https://shop.example/p/1", URL: &job.URLParts{Scheme: "https", Host: "shop.example", Path: "/p/1"}}},
		EXIF:  &job.EXIF{TakenAt: "2024-05-17T14:03:11+02:00", Latitude: ptr(48.8584), Longitude: ptr(2.2945)},
		Faces: []job.Face{{X: 1, Y: 2, W: 3, H: 4, Confidence: 9}},
	})
	sydney := doneWith(t, db, "a", 2, &job.Result{
		QR:    []job.Code{{Text: "https://other.example/x", URL: &job.URLParts{Host: "other.example"}}, {Text: "plain text"}},
		EXIF:  &job.EXIF{TakenAt: "2024-06-01T09:00:00", Latitude: ptr(-33.8688), Longitude: ptr(151.2093)},
		Faces: []job.Face{},
	})
	plain := doneWith(t, db, "a", 3, &job.Result{Labels: []job.Label{{Label: "tabby", Score: 0.5}}})
	// Three codes: only the second and third are URLs, and both match
	// "https://".
	multi := doneWith(t, db, "a", 5, &job.Result{QR: []job.Code{
		{Text: "HELLO plain text"},
		{Text: "https://tiny.example/x/y/z", URL: &job.URLParts{Host: "tiny.example"}},
		{Text: "https://a.example/one", URL: &job.URLParts{Host: "a.example"}},
	}})
	// Two photos a hundred metres from the North Pole, on opposite
	// meridians.
	pole0 := doneWith(t, db, "a", 6, &job.Result{EXIF: &job.EXIF{Latitude: ptr(89.999), Longitude: ptr(0.0)}})
	pole180 := doneWith(t, db, "a", 7, &job.Result{EXIF: &job.EXIF{Latitude: ptr(89.999), Longitude: ptr(180.0)}})
	// 1,947 km from 60° N 0° E, near where a circle of 2,000 km round it
	// reaches furthest east (65.6° N 38.2° E).
	lapland := doneWith(t, db, "a", 8, &job.Result{EXIF: &job.EXIF{Latitude: ptr(65.5), Longitude: ptr(37.0)}})
	// Fiji, just east of the antimeridian (Taveuni, 179.99° E).
	fiji := doneWith(t, db, "a", 4, &job.Result{
		EXIF: &job.EXIF{Latitude: ptr(-16.8), Longitude: ptr(179.99)},
	})
	// Another tenant's image matching everything is never listed.
	doneWith(t, db, "b", 1, &job.Result{QR: []job.Code{{Text: "https://shop.example/p/1", URL: &job.URLParts{}}}})

	cases := []struct {
		name string
		opt  ListOptions
		want []string
	}{
		{"qr prefix", ListOptions{QRURL: "https://shop.example/"}, []string{paris}},
		{"qr exact", ListOptions{QRURL: "https://other.example/x"}, []string{sydney}},
		{"qr none", ListOptions{QRURL: "https://nowhere"}, nil},
		{"qr any code, not only the first", ListOptions{QRURL: "https://a.example"}, []string{multi}},
		{"qr two codes match, listed once", ListOptions{QRURL: "https://"}, []string{multi, sydney, paris}},
		{"qr text that is not a URL", ListOptions{QRURL: "HELLO"}, nil},
		{"qr host in capitals", ListOptions{QRURL: "HTTPS://Shop.Example/p/"}, []string{paris}},
		{"qr path keeps its case", ListOptions{QRURL: "https://shop.example/P/"}, nil},
		{"taken after", ListOptions{TakenAfter: time.Date(2024, 5, 20, 0, 0, 0, 0, time.UTC)}, []string{sydney}},
		{"taken before (offset honoured)", ListOptions{TakenBefore: time.Date(2024, 5, 17, 12, 3, 12, 0, time.UTC)}, []string{paris}},
		// Paris is taken at 12:03:11 UTC exactly: a nanosecond after it
		// leaves it out, a nanosecond before it keeps it in.
		{"taken after, to the nanosecond", ListOptions{TakenAfter: time.Date(2024, 5, 17, 12, 3, 11, 1, time.UTC), TakenBefore: time.Date(2024, 5, 20, 0, 0, 0, 0, time.UTC)}, nil},
		{"taken before, to the nanosecond", ListOptions{TakenAfter: time.Date(2024, 5, 17, 0, 0, 0, 0, time.UTC), TakenBefore: time.Date(2024, 5, 17, 12, 3, 11, 1, time.UTC)}, []string{paris}},
		{"taken window", ListOptions{TakenAfter: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), TakenBefore: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}, []string{sydney, paris}},
		{"near paris", ListOptions{Near: &Near{Lat: 48.86, Lon: 2.35, Km: 10}}, []string{paris}},
		{"near paris too tight", ListOptions{Near: &Near{Lat: 48.86, Lon: 2.35, Km: 1}}, nil},
		{"near sydney", ListOptions{Near: &Near{Lat: -33.87, Lon: 151.21, Km: 5}}, []string{sydney}},
		{"near fiji from the west of the antimeridian", ListOptions{Near: &Near{Lat: -16.8, Lon: -179.99, Km: 5}}, []string{fiji}},
		{"near fiji from the east", ListOptions{Near: &Near{Lat: -16.8, Lon: 179.98, Km: 5}}, []string{fiji}},
		{"near fiji, wide, across the antimeridian", ListOptions{Near: &Near{Lat: -16.8, Lon: -170, Km: 2000}}, []string{fiji}},
		{"near fiji, too far west", ListOptions{Near: &Near{Lat: -16.8, Lon: -179.8, Km: 5}}, nil},
		// Every longitude; the north pole photos are 20,014 km away, just
		// beyond.
		{"near the south pole, every longitude", ListOptions{Near: &Near{Lat: -89.99, Lon: 0, Km: 20000}}, []string{fiji, lapland, sydney, paris}},
		// Great-circle distances (haversine): 80° N 90° E is 1,112 km
		// from both pole photos, 80° N 0° E too, and 10° N 179.99° E is
		// 8,896 km from the pole, 5,748 km from Sydney and 13,466 km from
		// Paris.
		{"a circle over the pole", ListOptions{Near: &Near{Lat: 80, Lon: 90, Km: 1200}}, []string{pole180, pole0}},
		{"a circle over the pole, the far meridian", ListOptions{Near: &Near{Lat: 80, Lon: 0, Km: 1200}}, []string{pole180, pole0}},
		{"just short of the pole", ListOptions{Near: &Near{Lat: 80, Lon: 0, Km: 1100}}, nil},
		{"wide, from the tropics", ListOptions{Near: &Near{Lat: 10, Lon: 179.99, Km: 9000}}, []string{fiji, pole180, pole0, sydney}},
		// At 60° N a circle of 2,000 km spans 38.2° of longitude either
		// side, not the 36° a flat approximation gives (Paris is 1,247 km
		// away).
		{"wide at high latitude", ListOptions{Near: &Near{Lat: 60, Lon: 0, Km: 2000}}, []string{lapland, paris}},
		{"has faces", ListOptions{HasFaces: ptr(true)}, []string{paris}},
		{"no faces (only where faces ran)", ListOptions{HasFaces: ptr(false)}, []string{sydney}},
		{"no filter", ListOptions{}, []string{fiji, lapland, pole180, pole0, multi, plain, sydney, paris}},
	}
	// substr counts characters: a prefix with a multi-byte one still matches.
	cafe := doneWith(t, db, "c", 1, &job.Result{QR: []job.Code{{Text: "https://café.example/menu", URL: &job.URLParts{}}}})
	page, err := db.ListImages(ctx, ListOptions{Tenant: "c", QRURL: "https://café.example/"})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(page.Images); !slices.Equal(got, []string{cafe}) {
		t.Errorf("ListImages(non-ASCII QR prefix) = %v; want [%s]", got, cafe)
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.opt.Tenant = "a"
			page, err := db.ListImages(ctx, tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(page.Images); !slices.Equal(got, tc.want) {
				t.Errorf("ListImages(%+v) = %v; want %v", tc.opt, got, tc.want)
			}
		})
	}
}

func testSimilarImages(t *testing.T, db *DB) {
	ctx := context.Background()
	base := doneWith(t, db, "a", 1, &job.Result{PHash: "f0f0f0f0f0f0f0f0"})
	near := doneWith(t, db, "a", 2, &job.Result{PHash: "f0f0f0f0f0f0f0f1"}) // 1 bit
	mid := doneWith(t, db, "a", 3, &job.Result{PHash: "f0f0f0f0f0f0f00f"})  // 8 bits
	doneWith(t, db, "a", 4, &job.Result{PHash: "0f0f0f0f0f0f0f0f"})         // 64 bits
	doneWith(t, db, "a", 5, &job.Result{})                                  // no hash
	doneWith(t, db, "b", 1, &job.Result{PHash: "f0f0f0f0f0f0f0f0"})         // other tenant

	got, err := db.SimilarImages(ctx, "a", base, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	var gotIDs []string
	var dists []int
	for _, s := range got {
		gotIDs = append(gotIDs, s.Image.ID)
		dists = append(dists, s.Distance)
	}
	if !slices.Equal(gotIDs, []string{near, mid}) || !slices.Equal(dists, []int{1, 8}) {
		t.Errorf("SimilarImages = %v %v; want [%s %s] [1 8]", gotIDs, dists, near, mid)
	}
	if got, _ := db.SimilarImages(ctx, "a", base, 10, 1); len(got) != 1 {
		t.Errorf("limit 1 gave %d", len(got))
	}
	if _, err := db.SimilarImages(ctx, "b", near, 10, 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("another tenant's image: err = %v; want ErrNotFound", err)
	}
}

func TestFoldURLHost(t *testing.T) {
	for in, want := range map[string]string{
		"HTTPS://Shop.Example/P/1?Q=A": "https://shop.example/P/1?Q=A",
		"http://EXAMPLE.com":           "http://example.com",
		"HTTP://Example.COM?X=Y":       "http://example.com?X=Y",
		"HELLO World":                  "HELLO World",
		"://Odd":                       "://Odd",
		"WIFI:S:Net;T:WPA;P:Pass;;":    "WIFI:S:Net;T:WPA;P:Pass;;",
	} {
		if got := foldURLHost(in); got != want {
			t.Errorf("foldURLHost(%q) = %q; want %q", in, got, want)
		}
	}
}
