package s3event

import (
	"errors"
	"testing"
)

const minioPut = `{"EventName":"s3:ObjectCreated:Put","Key":"photos/inputs/acme/cat%20one.jpg","Records":[{"eventVersion":"2.0","eventSource":"minio:s3","awsRegion":"","eventTime":"2024-05-17T12:00:00.000Z","eventName":"s3:ObjectCreated:Put","s3":{"s3SchemaVersion":"1.0","configurationId":"Config","bucket":{"name":"photos","arn":"arn:aws:s3:::photos"},"object":{"key":"inputs%2Facme%2Fcat+one.jpg","size":1234,"eTag":"\"abc\"","contentType":"image/jpeg","sequencer":"17D"}}}]}`

func TestParse(t *testing.T) {
	recs, err := Parse([]byte(minioPut))
	if err != nil {
		t.Fatal(err)
	}
	want := Record{EventName: "s3:ObjectCreated:Put", Bucket: "photos", Key: "inputs/acme/cat one.jpg", Size: 1234, ETag: "abc", Sequencer: "17D"}
	if len(recs) != 1 || recs[0] != want {
		t.Fatalf("Parse = %+v; want [%+v]", recs, want)
	}
	if !recs[0].Created() {
		t.Error("ObjectCreated record not Created()")
	}
	if !IsEvent([]byte(minioPut)) {
		t.Error("IsEvent(minio event) = false")
	}
}

func TestParseRejects(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     error
	}{
		{"job json", `{"image_id":"img_1"}`, ErrNotEvent},
		{"not json", `hello`, ErrNotEvent},
		{"records not array", `{"Records":{}}`, ErrNotEvent},
		{"no key", `{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{}}}]}`, nil},
		{"bad escape", `{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"%zz"}}}]}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.in))
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Errorf("Parse(%s) = %v; want an error (%v)", tc.in, err, tc.want)
			}
		})
	}
	if IsEvent([]byte(`{"image_id":"x"}`)) {
		t.Error("IsEvent(job) = true")
	}
}

func TestCreated(t *testing.T) {
	for name, want := range map[string]bool{"ObjectCreated:Put": true, "s3:ObjectCreated:CompleteMultipartUpload": true, "ObjectRemoved:Delete": false, "s3:ObjectRemoved:Delete": false} {
		if got := (Record{EventName: name}).Created(); got != want {
			t.Errorf("Created(%s) = %v; want %v", name, got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(minioPut))
	f.Add([]byte(`{"Records":[]}`))
	f.Add([]byte(`{"image_id":"img"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := Parse(b)
		if err == nil {
			for _, r := range recs {
				if r.Bucket == "" || r.Key == "" {
					t.Fatalf("accepted a record without bucket or key: %+v", r)
				}
			}
		}
		_ = IsEvent(b)
	})
}
