// Package s3event reads the event notifications S3-compatible stores send
// when objects change (AWS S3, MinIO, versitygw, Ceph…): a JSON document with
// a "Records" array. Glimpse uses ObjectCreated events to start recognition
// for images written straight into a bucket.
package s3event

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ErrNotEvent means the bytes are not an S3 event notification.
var ErrNotEvent = errors.New("s3event: not an S3 event notification")

// MaxRecords bounds how many records one notification may carry.
const MaxRecords = 1000

// Record is one object change.
type Record struct {
	// EventName is e.g. "ObjectCreated:Put" (MinIO writes "s3:ObjectCreated:Put").
	EventName string
	Bucket    string
	// Key is the object key, URL-decoded.
	Key       string
	Size      int64
	ETag      string
	Sequencer string
}

// Created reports whether the record says an object was created.
func (r Record) Created() bool {
	return strings.HasPrefix(strings.TrimPrefix(r.EventName, "s3:"), "ObjectCreated:")
}

// IsEvent reports cheaply whether b looks like an event notification rather
// than some other JSON message.
func IsEvent(b []byte) bool {
	var probe struct {
		Records json.RawMessage `json:"Records"`
	}
	return json.Unmarshal(b, &probe) == nil && len(probe.Records) > 0 && probe.Records[0] == '['
}

// Parse reads a notification. Keys arrive URL-encoded (with '+' for spaces)
// and are decoded. A record without a bucket or key is an error.
func Parse(b []byte) ([]Record, error) {
	var doc struct {
		Records *[]struct {
			EventName string `json:"eventName"`
			S3        struct {
				Bucket struct {
					Name string `json:"name"`
				} `json:"bucket"`
				Object struct {
					Key       string `json:"key"`
					Size      int64  `json:"size"`
					ETag      string `json:"eTag"`
					Sequencer string `json:"sequencer"`
				} `json:"object"`
			} `json:"s3"`
		} `json:"Records"`
	}
	if err := json.Unmarshal(b, &doc); err != nil || doc.Records == nil {
		return nil, ErrNotEvent
	}
	recs := *doc.Records
	if len(recs) > MaxRecords {
		return nil, fmt.Errorf("s3event: %d records; at most %d", len(recs), MaxRecords)
	}
	out := make([]Record, 0, len(recs))
	for i, r := range recs {
		if r.S3.Bucket.Name == "" || r.S3.Object.Key == "" {
			return nil, fmt.Errorf("s3event: record %d has no bucket or key", i)
		}
		key, err := url.QueryUnescape(r.S3.Object.Key)
		if err != nil {
			return nil, fmt.Errorf("s3event: record %d: bad key encoding: %v", i, err)
		}
		out = append(out, Record{
			EventName: r.EventName,
			Bucket:    r.S3.Bucket.Name,
			Key:       key,
			Size:      r.S3.Object.Size,
			ETag:      strings.Trim(r.S3.Object.ETag, `"`),
			Sequencer: r.S3.Object.Sequencer,
		})
	}
	return out, nil
}
