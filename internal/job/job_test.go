package job

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseFeatures(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []Feature
		wantErr string
	}{
		{"", DefaultFeatures, ""},
		{"labels", []Feature{FeatureLabels}, ""},
		{" QR , labels,qr", []Feature{FeatureLabels, FeatureQR}, ""},
		{"all", sorted(Features), ""},
		{"labels,bogus,worse", nil, `unknown feature "bogus", "worse"; valid features are "labels", "qr"`},
	} {
		got, err := ParseFeatures(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseFeatures(%q) error = %v; want it to contain %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("ParseFeatures(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func sorted(fs []Feature) []Feature {
	out := slices.Clone(fs)
	slices.Sort(out)
	return out
}

func TestImageIDs(t *testing.T) {
	sha := ContentHash([]byte("bytes"))
	a := NewImageID("acme", sha, "")
	if !ValidID(a) || a != NewImageID("acme", sha, "") {
		t.Errorf("NewImageID not deterministic or not valid: %q", a)
	}
	if a == NewImageID("globex", sha, "") {
		t.Error("two tenants' same bytes share an id")
	}
	if a == NewImageID("acme", sha, "k1") || NewImageID("acme", sha, "k1") != NewImageID("acme", ContentHash([]byte("other")), "k1") {
		t.Error("the idempotency key does not decide the id")
	}
	for _, bad := range []string{"", "img_", "img_0123456789abcdef0123456Z", "../etc/passwd", "img_0123456789abcdef012345678"} {
		if ValidID(bad) {
			t.Errorf("ValidID(%q) = true", bad)
		}
	}
}

func TestUnionFeatures(t *testing.T) {
	tests := []struct {
		have, want, union []Feature
		widened           bool
	}{
		{[]Feature{FeatureLabels}, []Feature{FeatureLabels}, []Feature{FeatureLabels}, false},
		{[]Feature{FeatureFaces, FeatureLabels}, []Feature{FeatureLabels}, []Feature{FeatureFaces, FeatureLabels}, false},
		{[]Feature{FeatureLabels}, []Feature{FeatureQR, FeatureFaces}, []Feature{FeatureFaces, FeatureLabels, FeatureQR}, true},
	}
	for _, tt := range tests {
		union, widened := UnionFeatures(tt.have, tt.want)
		if !slices.Equal(union, tt.union) || widened != tt.widened {
			t.Errorf("UnionFeatures(%v, %v) = %v, %v; want %v, %v", tt.have, tt.want, union, widened, tt.union, tt.widened)
		}
	}
}

// A job asking an image for more features is a new message, while a retried
// publish of the same job is the same one.
func TestMessageIDNamesTheFeatures(t *testing.T) {
	born := time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)
	j := Job{ImageID: "img_x", ImageCreatedAt: born, Features: []Feature{FeatureLabels}}
	again := j
	wider := j
	wider.Features = []Feature{FeatureFaces, FeatureLabels}
	reborn := j
	reborn.ImageCreatedAt = born.Add(time.Second)
	if j.MessageID() != again.MessageID() {
		t.Errorf("the same job has ids %q and %q", j.MessageID(), again.MessageID())
	}
	if j.MessageID() == wider.MessageID() || j.MessageID() == reborn.MessageID() {
		t.Errorf("ids %q, %q, %q; want the wider job and the new life to differ", j.MessageID(), wider.MessageID(), reborn.MessageID())
	}
}
