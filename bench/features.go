package main

import (
	"context"
	"fmt"
	"image"
	"runtime"
	"slices"
	"time"

	"github.com/glimpse-oss/glimpse/internal/analyzer"
	"github.com/glimpse-oss/glimpse/internal/analyzer/standard"
	"github.com/glimpse-oss/glimpse/internal/imagedata"
	"github.com/glimpse-oss/glimpse/internal/job"
	"github.com/glimpse-oss/glimpse/internal/models"
	"github.com/glimpse-oss/glimpse/internal/worker"
)

// nopBlobs swallows thumbnails: the benchmark measures making them, not
// the disk.
type nopBlobs struct{}

func (nopBlobs) Put(context.Context, string, []byte, string) error { return nil }

// featureCosts prints what each feature costs a job (decode at the size the
// feature needs + its analyzer) on the same images, next to labels alone and
// features=all, all measured in this run. Each job is measured twice: for
// its CPU time with the analyzers run one after another (what a job costs a
// busy server, where every core has a job of its own), and for its wall time
// with the analyzers of the job run concurrently on GOMAXPROCS cores (what
// one job waits on an idle server). The CPU time is the process's, so it
// includes the garbage collector's share.
func featureCosts(model *models.Model, base image.Image, rounds int) error {
	pipe, err := standard.New(model, nopBlobs{}, standard.Options{})
	if err != nil {
		return err
	}
	defer pipe.Close()
	type set struct {
		name     string
		features []job.Feature
	}
	sets := []set{{"labels", []job.Feature{job.FeatureLabels}}}
	for _, f := range job.Features[1:] {
		sets = append(sets, set{string(f), []job.Feature{f}})
	}
	sets = append(sets, set{"all", job.Features})

	sizes := []struct {
		name string
		w, h int
	}{{"1 MP", 1155, 866}, {"12 MP", 4000, 3000}}
	procs := runtime.GOMAXPROCS(0)
	type cost struct{ cpu, wall time.Duration }
	results := map[string][]cost{}
	for _, s := range sizes {
		images := makeJPEGs(base, s.w, s.h, 3)
		// Rounds go over every set in turn, so each set's jobs are spread
		// over the same minutes: this machine's speed drifts, and sets
		// measured one block after another would carry that drift into the
		// ratios. Round 0 warms every set up and is not counted.
		cpus := make([][]time.Duration, len(sets))
		walls := make([][]time.Duration, len(sets))
		for r := 0; r <= rounds; r++ {
			b := images[r%len(images)]
			for i, set := range sets {
				for _, parallel := range []int{1, procs} {
					pipe.SetParallel(parallel)
					c0, t0 := selfCPU(), time.Now()
					if err := runJob(pipe, b, set.features); err != nil {
						return fmt.Errorf("%s on %s: %w", set.name, s.name, err)
					}
					wall, cpu := time.Since(t0), selfCPU()-c0
					if r == 0 {
						continue
					}
					if parallel == 1 {
						cpus[i] = append(cpus[i], cpu)
					} else {
						walls[i] = append(walls[i], wall)
					}
				}
			}
		}
		for i, set := range sets {
			results[set.name] = append(results[set.name], cost{medianOf(cpus[i]), medianOf(walls[i])})
		}
	}
	fmt.Printf("\nPer-feature cost of one job (decode at the size the features need + analyzers), median of %d jobs each, the sets taking turns:\n", rounds)
	fmt.Printf("  cpu:  CPU time, analyzers one after another (one core per job, as on a busy server)\n")
	fmt.Printf("  wall: elapsed time, the job's analyzers run concurrently on %d cores (one job on an idle server)\n", procs)
	fmt.Printf("%-10s", "")
	for _, s := range sizes {
		fmt.Printf("  %-36s", s.name)
	}
	fmt.Printf("\n%-10s", "feature")
	for range sizes {
		fmt.Printf("  %8s %8s %9s %8s", "cpu", "×labels", fmt.Sprintf("wall(%d)", procs), "×labels")
	}
	fmt.Println()
	for _, set := range sets {
		fmt.Printf("%-10s", set.name)
		for i := range sizes {
			c, ref := results[set.name][i], results["labels"][i]
			fmt.Printf("  %6.1fms %7.2f× %7.1fms %7.2f×",
				ms(c.cpu), float64(c.cpu)/float64(ref.cpu), ms(c.wall), float64(c.wall)/float64(ref.wall))
		}
		fmt.Println()
	}
	all, labels := results["all"][0], results["labels"][0]
	fmt.Printf("target: all ≤ 2× labels on 1 MP — cpu %.2f× (%s), wall(%d) %.2f× (%s)\n",
		float64(all.cpu)/float64(labels.cpu), verdict(all.cpu, labels.cpu), procs,
		float64(all.wall)/float64(labels.wall), verdict(all.wall, labels.wall))
	return nil
}

// verdict says whether all is within twice labels.
func verdict(all, labels time.Duration) string {
	if all <= 2*labels {
		return "met"
	}
	return "not met"
}

func medianOf(ds []time.Duration) time.Duration {
	ds = slices.Clone(ds)
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// jobBuffers are the pixel buffers the jobs recycle, as a worker's do.
var jobBuffers = imagedata.NewBuffers(worker.DefaultPixelBuffers)

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
		dec, err := imagedata.Decode(b, lim, imagedata.DecodeOptions{MinSide: need, Buffers: jobBuffers})
		if err != nil {
			return err
		}
		img = analyzer.NewImage("img_bench", b, dec)
		img.Buffers = jobBuffers
		defer img.Release()
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
