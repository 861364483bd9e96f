package standard

import (
	"bytes"
	"context"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/glimpse-oss/glimpse/internal/analyzer"
	"github.com/glimpse-oss/glimpse/internal/analyzer/analyzertest"
	"github.com/glimpse-oss/glimpse/internal/analyzer/classify"
	"github.com/glimpse-oss/glimpse/internal/imagedata"
	"github.com/glimpse-oss/glimpse/internal/job"
	"github.com/glimpse-oss/glimpse/internal/models"
	"github.com/glimpse-oss/glimpse/internal/testphotos"
)

// memBlobs keeps what is stored in memory.
type memBlobs struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (b *memBlobs) Put(_ context.Context, key string, v []byte, _ string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = map[string][]byte{}
	}
	b.m[key] = bytes.Clone(v)
	return nil
}

// TestConcurrentMatchesSequential runs every feature on real photos with the
// analyzers one after another and all at once, and checks the answers, and
// the stored thumbnails, are the same: the analyzers share working copies,
// and which one asks first must not change what anyone sees.
func TestConcurrentMatchesSequential(t *testing.T) {
	analyzertest.Need(t, "onnx runtime", classify.InitRuntime(""))
	model, err := models.Locate("")
	analyzertest.Need(t, "model", err)
	for _, name := range []string{"astronaut.png", "dog.jpg", "kite.jpg"} {
		t.Run(name, func(t *testing.T) {
			b := testphotos.Bytes(t, name)
			var results [2]*job.Result
			var thumbs [2][]byte
			for i, parallel := range []int{1, 8} {
				blobs := &memBlobs{}
				p, err := New(model, blobs, Options{})
				if err != nil {
					t.Fatal(err)
				}
				defer p.Close()
				p.SetParallel(parallel)
				dec, err := imagedata.Decode(b, imagedata.DefaultLimits(), imagedata.DecodeOptions{MinSide: p.MinSide(job.Features)})
				if err != nil {
					t.Fatal(err)
				}
				res := &job.Result{}
				if err := p.Run(context.Background(), analyzer.NewImage("img_test", b, dec), job.Features, res); err != nil {
					t.Fatalf("parallel %d: Run = %v", parallel, err)
				}
				if len(res.Errors) > 0 {
					t.Fatalf("parallel %d: errors %v", parallel, res.Errors)
				}
				results[i], thumbs[i] = res, blobs.m[job.ThumbnailKey("img_test")]
			}
			if !reflect.DeepEqual(results[0], results[1]) {
				t.Errorf("concurrent result %+v\nsequential %+v", results[1], results[0])
			}
			if len(thumbs[0]) == 0 || !bytes.Equal(thumbs[0], thumbs[1]) {
				t.Errorf("thumbnails differ (%d and %d bytes)", len(thumbs[0]), len(thumbs[1]))
			}
		})
	}
}

// TestRecycledBuffersMatchFresh runs every feature on photos one after
// another through one set of recycled pixel buffers, as a worker does, each
// job's buffers dirty with the jobs before it, and checks each result
// equals that of a job with fresh memory.
func TestRecycledBuffersMatchFresh(t *testing.T) {
	analyzertest.Need(t, "onnx runtime", classify.InitRuntime(""))
	model, err := models.Locate("")
	analyzertest.Need(t, "model", err)
	blobs := &memBlobs{}
	p, err := New(model, blobs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	run := func(b []byte, bufs *imagedata.Buffers) (*job.Result, []byte) {
		t.Helper()
		dec, err := imagedata.Decode(b, imagedata.DefaultLimits(), imagedata.DecodeOptions{MinSide: p.MinSide(job.Features), Buffers: bufs})
		if err != nil {
			t.Fatal(err)
		}
		img := analyzer.NewImage("img_test", b, dec)
		img.Buffers = bufs
		defer img.Release()
		res := &job.Result{}
		if err := p.Run(context.Background(), img, job.Features, res); err != nil {
			t.Fatal(err)
		}
		return res, slices.Clone(blobs.m[job.ThumbnailKey("img_test")])
	}
	bufs := imagedata.NewBuffers(256 << 20)
	names := []string{"astronaut.png", "dog.jpg", "kite.jpg", "coffee.png", "horses.jpg", "dog.jpg"}
	for _, name := range names {
		b := testphotos.Bytes(t, name)
		want, wantThumb := run(b, nil)
		got, gotThumb := run(b, bufs)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: with recycled buffers %+v\nwith fresh memory %+v", name, got, want)
		}
		if !bytes.Equal(gotThumb, wantThumb) {
			t.Errorf("%s: thumbnails differ", name)
		}
	}
}
