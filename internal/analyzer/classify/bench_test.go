package classify

import (
	"context"
	"fmt"
	"image"
	"testing"

	"github.com/glimpse-oss/glimpse/internal/models"
)

func BenchmarkPreprocess(b *testing.B) {
	spec := models.Default()
	dst := make([]float32, 3*spec.Size*spec.Size)
	sizes := []struct {
		name string
		w, h int
	}{
		{"1MP", 1152, 864},
		{"12MP", 4000, 3000},
	}
	filters := []struct {
		name string
		f    filter
	}{
		{"bilinear", triangle},
		{"area", box},
	}
	for _, sz := range sizes {
		rgba := testImage(sz.w, sz.h)
		imgs := []struct {
			name string
			img  image.Image
		}{
			{"RGBA", rgba},
			{"YCbCr420", toYCbCr(rgba, image.YCbCrSubsampleRatio420)},
			{"generic", generic{rgba}},
		}
		for _, im := range imgs {
			for _, f := range filters {
				b.Run(fmt.Sprintf("%s/%s/%s", sz.name, im.name, f.name), func(b *testing.B) {
					defer func(old filter) { shrinkFilter = old }(shrinkFilter)
					shrinkFilter = f.f
					b.ReportAllocs()
					for b.Loop() {
						Preprocess(im.img, spec, dst)
					}
				})
			}
		}
	}
}

func BenchmarkClassify(b *testing.B) {
	c := newTestClassifier(b, 5)
	img := photo(b, "chelsea.png") // 451x300
	small := image.NewRGBA(image.Rect(0, 0, 384, 256))
	for y := range 256 {
		for x := range 384 {
			small.Set(x, y, img.At(x*451/384, y*300/256))
		}
	}
	ctx := context.Background()
	b.Run("inference", func(b *testing.B) {
		Preprocess(small, c.spec, c.input.GetData())
		for b.Loop() {
			if err := c.session.Run(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("preprocess+inference/384x256", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Classify(ctx, small); err != nil {
				b.Fatal(err)
			}
		}
	})
}
