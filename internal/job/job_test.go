package job

import (
	"slices"
	"strings"
	"testing"
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
