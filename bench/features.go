package main

import (
	"context"
	"fmt"
	"image"
	"sort"
	"time"

	"github.com/glimpse-oss/glimpse/internal/analyzer"
	"github.com/glimpse-oss/glimpse/internal/analyzer/standard"
	"github.com/glimpse-oss/glimpse/internal/imagedata"
	"github.com/glimpse-oss/glimpse/internal/job"
	"github.com/glimpse-oss/glimpse/internal/models"
)

// nopBlobs swallows thumbnails: the benchmark measures making them, not
// the disk.
type nopBlobs struct{}

func (nopBlobs) Put(context.Context, string, []byte, string) error { return nil }

// featureCosts prints what each feature costs a job (decode at the size the
// feature needs + its analyzer) on the same images, next to labels alone and
// features=all, all measured in this run on one core.
func featureCosts(model *models.Model, base image.Image, rounds int) error {
	pipe, err := standard.New(model, nopBlobs{})
	if err != nil {
		return err
	}
	defer pipe.Close()
	sets := []struct {
		name     string
		features []job.Feature
	}{{"labels", []job.Feature{job.FeatureLabels}}}
	for _, f := range job.Features[1:] {
		sets = append(sets, struct {
			name     string
			features []job.Feature
		}{string(f), []job.Feature{f}})
	}
	sets = append(sets, struct {
		name     string
		features []job.Feature
	}{"all", job.Features})

	sizes := []struct {
		name string
		w, h int
	}{{"1 MP", 1155, 866}, {"12 MP", 4000, 3000}}
	fmt.Printf("\nPer-feature cost of one job (decode at the size the features need + analyzers), one core, median of %d:\n", rounds)
	fmt.Printf("%-10s", "feature")
	for _, s := range sizes {
		fmt.Printf("  %12s  %8s", s.name, "×labels")
	}
	fmt.Println()
	results := map[string][]time.Duration{}
	for _, s := range sizes {
		images := makeJPEGs(base, s.w, s.h, 3)
		for _, set := range sets {
			var times []time.Duration
			for r := 0; r < rounds; r++ {
				b := images[r%len(images)]
				t0 := time.Now()
				if err := runJob(pipe, b, set.features); err != nil {
					return fmt.Errorf("%s on %s: %w", set.name, s.name, err)
				}
				times = append(times, time.Since(t0))
			}
			sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
			results[set.name] = append(results[set.name], times[len(times)/2])
		}
	}
	for _, set := range sets {
		fmt.Printf("%-10s", set.name)
		for i := range sizes {
			d, ref := results[set.name][i], results["labels"][i]
			fmt.Printf("  %10.1fms  %7.2f×", float64(d.Microseconds())/1000, float64(d)/float64(ref))
		}
		fmt.Println()
	}
	fmt.Println("target: all ≤ 2× labels on 1 MP")
	return nil
}

func runJob(pipe *analyzer.Pipeline, b []byte, features []job.Feature) error {
	lim := imagedata.DefaultLimits()
	var img *analyzer.Image
	if need := pipe.MinSide(features); need == analyzer.NoPixels {
		h, err := imagedata.Inspect(b, lim)
		if err != nil {
			return err
		}
		img = &analyzer.Image{ID: "img_bench", Bytes: b, Header: h}
	} else {
		dec, err := imagedata.Decode(b, lim, imagedata.DecodeOptions{MinSide: need})
		if err != nil {
			return err
		}
		img = analyzer.NewImage("img_bench", b, dec)
	}
	res := &job.Result{}
	if err := pipe.Run(context.Background(), img, features, res); err != nil {
		return err
	}
	if len(res.Errors) > 0 {
		return fmt.Errorf("feature errors: %v", res.Errors)
	}
	return nil
}
