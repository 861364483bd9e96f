package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/glimpse-oss/glimpse/internal/loadgen"
	"github.com/glimpse-oss/glimpse/internal/pump"
)

type pumpFlags struct {
	loadFlags
	count       int
	out         string
	manifest    string
	from, until string
	shop        string
	products    int
	size        string
	quality     string
	rotated     float64
	backgrounds string
	workers     int
}

func newPumpCmd(g *globals) *cobra.Command {
	f := &pumpFlags{}
	def := pump.NewDefaultConfig()
	cmd := &cobra.Command{
		Use:   "pump",
		Short: "Make realistic QR photos with EXIF time and place, to files or straight to a server",
		Long: `pump makes photos that tell a story: each shows a QR code of a product URL on a shop,
lying at an angle on a table (or on one of your photos, --backgrounds), and carries in
its EXIF when it was taken (a daily rhythm over --from/--until, in the city's time zone)
and where (around a weighted set of cities, within 5 km). Popular products come up more
often (a Zipf-like skew). Some photos are stored turned, with an EXIF orientation so they
display upright. The same --seed gives byte-identical files.

--out DIR writes the photos and DIR/manifest.jsonl (file, qr, product, taken_at, lat,
lon, city, orientation). --to URL sends them to a Glimpse server as they are made, at
--rate, through the same client as 'glimpse load' (same flags), and reports accuracy
against what each photo holds.`,
		Example: `  glimpse pump --count 200 --out pump/
  glimpse load --manifest pump/manifest.jsonl
  glimpse pump --count 1000 --to http://127.0.0.1:8080 --rate 5`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPump(cmd.Context(), g, f)
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&f.count, "count", 100, "photos to make")
	fl.StringVar(&f.out, "out", "", "directory to write the photos and manifest.jsonl to")
	fl.StringVar(&f.manifest, "manifest", "", "where to write the manifest (default DIR/manifest.jsonl with --out)")
	fl.StringVar(&f.url, "to", "", "send the photos to this Glimpse server as they are made")
	fl.StringVar(&f.from, "from", def.From.Format(time.DateOnly), "first day (or RFC 3339 time) photos are taken")
	fl.StringVar(&f.until, "until", def.Until.Format(time.DateOnly), "end of the range, exclusive (day or RFC 3339 time)")
	fl.StringVar(&f.shop, "shop", def.Shop, "host of the product URLs")
	fl.IntVar(&f.products, "products", def.Products, "products in the catalogue")
	fl.StringVar(&f.size, "size", fmt.Sprintf("%dx%d", def.Width, def.Height), "photo size, WIDTHxHEIGHT")
	fl.StringVar(&f.quality, "quality", fmt.Sprintf("%d-%d", def.QualityMin, def.QualityMax), "JPEG quality range, MIN-MAX")
	fl.Float64Var(&f.rotated, "rotated", def.Rotated, "share of photos stored turned with an EXIF orientation")
	fl.StringVar(&f.backgrounds, "backgrounds", "", "directory of photos to lay the codes on (default: procedural surfaces)")
	fl.IntVar(&f.workers, "workers", runtime.NumCPU(), "photos made in parallel")
	// The client flags of `load`, used with --to; --seed is shared.
	f.loadFlags.register(cmd)
	fl.Lookup("seed").Usage = "seed of the photos (the same seed makes the same bytes) and of the send schedule"
	return cmd
}

func runPump(ctx context.Context, g *globals, f *pumpFlags) error {
	cfg, err := f.pumpConfig()
	if err != nil {
		return err
	}
	if f.out == "" && f.url == "" {
		return errors.New("say where the photos go: --out DIR, --to URL, or both")
	}
	if f.count < 1 {
		return fmt.Errorf("--count %d: want 1 or more", f.count)
	}
	p, err := pump.New(cfg)
	if err != nil {
		return err
	}
	manifestPath := f.manifest
	if manifestPath == "" && f.out != "" {
		manifestPath = filepath.Join(f.out, "manifest.jsonl")
	}
	if f.out != "" {
		if err := os.MkdirAll(f.out, 0o755); err != nil {
			return err
		}
	}
	var manifest *bufio.Writer
	if manifestPath != "" {
		mf, err := os.Create(manifestPath)
		if err != nil {
			return err
		}
		defer mf.Close()
		manifest = bufio.NewWriter(mf)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	photos := make(chan pump.Photo, f.workers)
	genErr := make(chan error, 1)
	go func() { genErr <- makePhotos(ctx, p, f.count, max(1, f.workers), photos) }()

	// Without --to, write as they come; with it, also feed the load client.
	var items chan loadgen.Item
	var runErr error
	var sum *loadgen.Summary
	var slos []loadgen.SLO
	runDone := make(chan struct{})
	if f.url != "" {
		lc, s, err := f.loadFlags.config(g.stdout)
		if err != nil {
			return err
		}
		slos = s
		if lc.Features == "" {
			lc.Features = "qr,exif"
		}
		lc.Count = f.count
		runner, err := loadgen.New(lc)
		if err != nil {
			return err
		}
		items = make(chan loadgen.Item, f.workers)
		go func() {
			defer close(runDone)
			sum, runErr = runWithProgress(ctx, g, &f.loadFlags, runner, loadgen.NewChan(items), "pump")
		}()
	} else {
		close(runDone)
	}

	enc := json.NewEncoder(manifest)
	written := 0
	var werr error
	for ph := range photos {
		if f.out != "" {
			if werr = os.WriteFile(filepath.Join(f.out, ph.Entry.File), ph.Data, 0o644); werr != nil {
				break
			}
		}
		if manifest != nil {
			if werr = enc.Encode(ph.Entry); werr != nil {
				break
			}
		}
		written++
		if items != nil {
			e := ph.Entry
			lat, lon := e.Lat, e.Lon
			it := loadgen.Item{Name: e.File, Data: ph.Data, Want: &loadgen.Expected{
				File: e.File, QR: e.QR, TakenAt: e.TakenAt, Lat: &lat, Lon: &lon}}
			select {
			case items <- it:
			case <-ctx.Done():
			}
		}
	}
	if werr != nil {
		cancel()
		for range photos {
		}
	}
	if items != nil {
		close(items)
	}
	gerr := <-genErr
	<-runDone
	if manifest != nil {
		if err := manifest.Flush(); err != nil && werr == nil {
			werr = err
		}
	}
	if werr != nil {
		return werr
	}
	if gerr != nil {
		return gerr
	}
	if f.out != "" && !f.json {
		fmt.Fprintf(g.stderr, "pump: wrote %d photos and %s\n", written, manifestPath)
	}
	if sum != nil {
		if err := reportLoad(g.stdout, &f.loadFlags, sum, slos); err != nil {
			return err
		}
	}
	return runErr
}

// makePhotos makes photos 1..n with workers in parallel and sends them to
// out in order, then closes out.
func makePhotos(ctx context.Context, p *pump.Pump, n, workers int, out chan<- pump.Photo) error {
	defer close(out)
	type made struct {
		ph  pump.Photo
		err error
	}
	// Each index has its own slot; at most 2×workers are made ahead of the
	// one being sent.
	slots := make([]chan made, n+1)
	for i := range slots {
		slots[i] = make(chan made, 1)
	}
	next := make(chan int)
	ahead := make(chan struct{}, 2*workers)
	for range workers {
		go func() {
			for i := range next {
				ph, err := p.Photo(i)
				slots[i] <- made{ph, err}
			}
		}()
	}
	go func() {
		defer close(next)
		for i := 1; i <= n; i++ {
			select {
			case ahead <- struct{}{}:
			case <-ctx.Done():
				return
			}
			select {
			case next <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	for i := 1; i <= n; i++ {
		var m made
		select {
		case m = <-slots[i]:
		case <-ctx.Done():
			return ctx.Err()
		}
		<-ahead
		if m.err != nil {
			return m.err
		}
		select {
		case out <- m.ph:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// pumpConfig turns the flags into a pump configuration.
func (f *pumpFlags) pumpConfig() (pump.Config, error) {
	cfg := pump.NewDefaultConfig()
	cfg.Seed, cfg.Shop, cfg.Products, cfg.Rotated = f.seed, f.shop, f.products, f.rotated
	var err error
	if cfg.From, err = parseDay(f.from); err != nil {
		return cfg, fmt.Errorf("--from: %v", err)
	}
	if cfg.Until, err = parseDay(f.until); err != nil {
		return cfg, fmt.Errorf("--until: %v", err)
	}
	if cfg.Width, cfg.Height, err = loadgen.ParseSize(f.size); err != nil {
		return cfg, fmt.Errorf("--size: %v", strings.TrimPrefix(err.Error(), "loadgen: "))
	}
	lo, hi, ok := strings.Cut(f.quality, "-")
	if !ok {
		hi = lo
	}
	cfg.QualityMin, err = strconv.Atoi(strings.TrimSpace(lo))
	if err == nil {
		cfg.QualityMax, err = strconv.Atoi(strings.TrimSpace(hi))
	}
	if err != nil {
		return cfg, fmt.Errorf("--quality %q: want MIN-MAX such as 70-92", f.quality)
	}
	if f.backgrounds != "" {
		err := filepath.WalkDir(f.backgrounds, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			switch strings.ToLower(filepath.Ext(p)) {
			case ".jpg", ".jpeg", ".png":
				if !d.IsDir() {
					cfg.Backgrounds = append(cfg.Backgrounds, p)
				}
			}
			return nil
		})
		if err != nil {
			return cfg, fmt.Errorf("--backgrounds: %v", err)
		}
		if len(cfg.Backgrounds) == 0 {
			return cfg, fmt.Errorf("--backgrounds %s: no .jpg or .png files", f.backgrounds)
		}
		sort.Strings(cfg.Backgrounds)
	}
	return cfg, nil
}

// parseDay parses a date (midnight UTC) or an RFC 3339 time.
func parseDay(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return t, fmt.Errorf("%q: want a date such as 2024-05-01 or an RFC 3339 time", s)
	}
	return t, nil
}
