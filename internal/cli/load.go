package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/glimpse-oss/glimpse/internal/job"
	"github.com/glimpse-oss/glimpse/internal/loadgen"
)

// exitSLOMissed is the exit status of a load whose --check failed.
const exitSLOMissed = 3

// loadFlags are the flags `load` shares with `pump --to`.
type loadFlags struct {
	url         string
	apiKey      string
	features    string
	wait        time.Duration
	pollMax     time.Duration
	timeout     time.Duration
	concurrency int
	rate        float64
	arrivals    string
	seed        uint64
	unique      bool
	json        bool
	print       bool
	check       string
	noProg      bool
}

func (f *loadFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.apiKey, "api-key", "", "API key, sent as \"Authorization: Bearer KEY\"")
	fl.StringVar(&f.features, "features", "", "features to ask for, e.g. labels,qr,exif (default: the server's, or what --manifest needs)")
	fl.DurationVar(&f.wait, "wait", 0, "sync mode: ask the server to answer with the result, waiting up to this long (?wait=); 0 uploads, then polls")
	fl.DurationVar(&f.pollMax, "poll-max", time.Second, "longest interval between polls of an image (async mode)")
	fl.DurationVar(&f.timeout, "timeout", 2*time.Minute, "give up on an image this long after its send")
	fl.IntVar(&f.concurrency, "concurrency", 0, "senders of a closed-loop run (default 4); with --rate, a cap on requests in flight (default none)")
	fl.Float64Var(&f.rate, "rate", 0, "open loop: send this many images per second whatever the server's pace (0: closed loop)")
	fl.StringVar(&f.arrivals, "arrivals", "poisson", "open-loop spacing of sends: poisson or uniform")
	fl.Uint64Var(&f.seed, "seed", 1, "seed of the arrival schedule and of generated images")
	fl.BoolVar(&f.unique, "unique", true, "send each request with its own Idempotency-Key, so a file sent again is processed again")
	fl.BoolVar(&f.json, "json", false, "print the summary (and --print-results lines) as JSON")
	fl.BoolVar(&f.print, "print-results", false, "print one line per image: <image> → <top label> (score)")
	fl.StringVar(&f.check, "check", "", "SLOs to check, e.g. 'p99<1.2s,avg<0.6s,errors=0'; exit status 3 when one is missed")
	fl.BoolVar(&f.noProg, "no-progress", false, "never show progress bars")
}

// config turns the flags into a loadgen configuration.
func (f *loadFlags) config(stdout io.Writer) (loadgen.Config, []loadgen.SLO, error) {
	var slos []loadgen.SLO
	if f.check != "" {
		var err error
		if slos, err = loadgen.ParseSLOs(f.check); err != nil {
			return loadgen.Config{}, nil, fmt.Errorf("--check: %v", strings.TrimPrefix(err.Error(), "loadgen: "))
		}
	}
	arr, err := loadgen.ParseArrivals(f.arrivals)
	if err != nil {
		return loadgen.Config{}, nil, fmt.Errorf("--arrivals: %v", strings.TrimPrefix(err.Error(), "loadgen: "))
	}
	cfg := loadgen.Config{
		URL: strings.TrimRight(f.url, "/"), APIKey: f.apiKey, Features: f.features, Wait: f.wait,
		PollMax: f.pollMax, Timeout: f.timeout, Concurrency: f.concurrency, Rate: f.rate,
		Arrivals: arr, Seed: f.seed, Unique: f.unique,
	}
	if f.print {
		var mu sync.Mutex
		enc := json.NewEncoder(stdout)
		cfg.OnResult = func(r loadgen.Result) {
			mu.Lock()
			defer mu.Unlock()
			if f.json {
				_ = enc.Encode(r)
				return
			}
			fmt.Fprintln(stdout, resultLine(r))
		}
	}
	return cfg, slos, nil
}

// resultLine is the classic one-line answer: "<image> → <top label> (score)".
func resultLine(r loadgen.Result) string {
	var b strings.Builder
	b.WriteString(r.Name)
	b.WriteString(" → ")
	switch {
	case r.Status == loadgen.StatusError:
		fmt.Fprintf(&b, "error: %s", r.ErrorKind)
		if r.Error != "" && !strings.Contains(r.ErrorKind, r.Error) {
			fmt.Fprintf(&b, ": %s", r.Error)
		}
		return b.String()
	case r.Status == loadgen.StatusFailed:
		fmt.Fprintf(&b, "failed: %s", r.Error)
		return b.String()
	}
	res := r.Result
	if res == nil {
		res = &job.Result{}
	}
	parts := []string{}
	if len(res.Labels) > 0 {
		parts = append(parts, fmt.Sprintf("%s (%.2f)", res.Labels[0].Label, res.Labels[0].Score))
	}
	for _, c := range res.QR {
		parts = append(parts, fmt.Sprintf("qr %q", c.Text))
	}
	if e := res.EXIF; e != nil && e.TakenAt != "" {
		parts = append(parts, "taken "+e.TakenAt)
	}
	if e := res.EXIF; e != nil && e.Latitude != nil && e.Longitude != nil {
		parts = append(parts, fmt.Sprintf("at %.6f,%.6f", *e.Latitude, *e.Longitude))
	}
	if len(parts) == 0 {
		parts = append(parts, "(no answer)")
	}
	b.WriteString(strings.Join(parts, " · "))
	return b.String()
}

type loadCmdFlags struct {
	loadFlags
	list     string
	generate string
	quality  int
	count    int
	duration time.Duration
	manifest string
	tol      float64
}

func newLoadCmd(g *globals) *cobra.Command {
	f := &loadCmdFlags{}
	cmd := &cobra.Command{
		Use:   "load [FILE|DIR...]",
		Short: "Send images to a Glimpse server and measure throughput, latency and errors",
		Long: `load sends images to a Glimpse server — files and directories (walked recursively), a
list of paths (--list), or images made on the fly (--generate WxH) — and follows each one to
its result, then prints throughput, latency percentiles split into upload, queue wait and
processing, and errors by kind.

Without --rate the load is closed-loop: --concurrency senders, each sending its next image
when the last one is answered. With --rate it is open-loop: images are sent on a schedule
(Poisson or uniform arrivals) even when earlier ones are slow, and latency counts from the
scheduled time, so a server falling behind shows in the numbers.

--check takes SLOs: metrics avg, p50, p90, p99, max (latency; prefix upload., queue. or
processing. for a phase), errors, error_rate, throughput (img/s) and accuracy_qr,
accuracy_time, accuracy_place, accuracy_label (with --manifest); operators < <= > >= =. Shares
(error_rate, accuracy_*) are written 0.99 or 99%.

--manifest reads expected answers (JSON Lines, as written by 'glimpse pump') and reports
accuracy per field; with no files given it sends the manifest's own files.

Exit status: 0 when the run completed (errors are reported, not fatal), 3 when an SLO
of --check was missed, 1 for anything else.`,
		Example: `  glimpse load photos/
  glimpse load --generate 640x480 --count 500 --concurrency 8
  glimpse load --generate 1024x768 --rate 20 --duration 1m --check 'p99<2s,errors=0'
  glimpse load --manifest pump/manifest.jsonl --print-results
  glimpse load --url https://glimpse.example --api-key glk_… --list files.txt --json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLoad(cmd.Context(), g, f, args)
		},
	}
	cmd.Flags().StringVar(&f.url, "url", "http://127.0.0.1:8080", "base URL of the Glimpse server")
	f.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.list, "list", "", "file listing image paths, one a line (- for stdin)")
	fl.StringVar(&f.generate, "generate", "", "send synthetic JPEGs of this size, e.g. 640x480, made on the fly")
	fl.IntVar(&f.quality, "quality", 85, "JPEG quality of --generate images")
	fl.IntVar(&f.count, "count", 0, "send this many images (files are sent again when there are fewer); default: each file once, or 100 generated")
	fl.DurationVar(&f.duration, "duration", 0, "send for this long (files are sent again as needed)")
	fl.StringVar(&f.manifest, "manifest", "", "expected answers (JSON Lines: file, qr, taken_at, lat, lon, label); report accuracy")
	fl.Float64Var(&f.tol, "place-tolerance", loadgen.DefaultPlaceTolerance, "degrees a position may be off and still count as right")
	return cmd
}

func runLoad(ctx context.Context, g *globals, f *loadCmdFlags, args []string) error {
	cfg, slos, err := f.config(g.stdout)
	if err != nil {
		return err
	}
	cfg.Count, cfg.Duration, cfg.PlaceTolerance = f.count, f.duration, f.tol
	if f.manifest != "" {
		if cfg.Manifest, err = loadgen.ReadManifest(f.manifest); err != nil {
			return err
		}
		if cfg.Features == "" {
			cfg.Features = job.FormatFeatures(cfg.Manifest.Features())
		}
	}

	var src loadgen.Source
	var paths []string
	switch {
	case f.generate != "" && (len(args) > 0 || f.list != ""):
		return errors.New("--generate makes its own images; give no files or --list with it")
	case f.generate != "":
		w, h, err := loadgen.ParseSize(f.generate)
		if err != nil {
			return fmt.Errorf("--generate: %v", strings.TrimPrefix(err.Error(), "loadgen: "))
		}
		if src, err = loadgen.NewGenerated(w, h, f.quality, f.seed); err != nil {
			return err
		}
		if cfg.Count == 0 && cfg.Duration == 0 {
			cfg.Count = 100
		}
	default:
		if paths, err = expandImageArgs(args); err != nil {
			return err
		}
		if f.list != "" {
			r := io.Reader(os.Stdin)
			if f.list != "-" {
				fh, err := os.Open(f.list)
				if err != nil {
					return err
				}
				defer fh.Close()
				r = fh
			}
			more, err := loadgen.ReadList(r)
			if err != nil {
				return err
			}
			paths = append(paths, more...)
		}
		if len(paths) == 0 && len(args) == 0 && f.list == "" && cfg.Manifest != nil {
			paths = cfg.Manifest.Files()
		}
		if len(paths) == 0 {
			return errors.New("nothing to send: give image files or directories, --list FILE, --generate WxH or --manifest FILE")
		}
		loop := cfg.Count > len(paths) || cfg.Duration > 0
		if cfg.Count == 0 && cfg.Duration == 0 {
			cfg.Count = len(paths)
		}
		src = loadgen.NewFiles(paths, loop)
	}

	runner, err := loadgen.New(cfg)
	if err != nil {
		return err
	}
	sum, err := runWithProgress(ctx, g, &f.loadFlags, runner, src, "load")
	if sum == nil {
		return err
	}
	if perr := reportLoad(g.stdout, &f.loadFlags, sum, slos); perr != nil {
		return perr
	}
	return err
}

// runWithProgress runs a load, showing live bars on a terminal.
func runWithProgress(ctx context.Context, g *globals, f *loadFlags, r *loadgen.Runner, src loadgen.Source, name string) (*loadgen.Summary, error) {
	if f.noProg || !isTerminal(g.stderr) {
		return r.Run(ctx, src)
	}
	var (
		mu   sync.Mutex
		last loadgen.Progress
	)
	snap := func() loadgen.Progress {
		mu.Lock()
		defer mu.Unlock()
		return last
	}
	prog := mpb.NewWithContext(ctx, mpb.WithOutput(g.stderr), mpb.WithWidth(32), mpb.WithRefreshRate(150*time.Millisecond))
	sent := prog.AddBar(0,
		mpb.PrependDecorators(decor.Name(fmt.Sprintf("%-5s sent ", name)), decor.CountersNoUnit("%d/%d", decor.WCSyncWidth)),
		mpb.AppendDecorators(decor.Any(func(decor.Statistics) string {
			return fmt.Sprintf("in flight %d", snap().InFlight)
		})),
	)
	done := prog.AddBar(0,
		mpb.PrependDecorators(decor.Name("      done "), decor.CountersNoUnit("%d/%d", decor.WCSyncWidth)),
		mpb.AppendDecorators(decor.Any(func(decor.Statistics) string {
			p := snap()
			rate := 0.0
			if p.Elapsed > 0 {
				rate = float64(p.Done) / p.Elapsed.Seconds()
			}
			return fmt.Sprintf("failed %d · %.1f img/s · %s", p.Failed, rate, p.Elapsed.Round(time.Second))
		})),
	)
	update := func() {
		p := r.Progress()
		mu.Lock()
		last = p
		mu.Unlock()
		total := p.Total
		if total == 0 {
			total = p.Sent + 1 // unknown: keep the bars open
		}
		sent.SetTotal(total, false)
		done.SetTotal(total, false)
		sent.SetCurrent(p.Sent)
		done.SetCurrent(p.Done + p.Failed)
	}
	stop := make(chan struct{})
	ticked := make(chan struct{})
	go func() {
		defer close(ticked)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				update()
			case <-stop:
				return
			}
		}
	}()
	sum, err := r.Run(ctx, src)
	close(stop)
	<-ticked
	update()
	if ctx.Err() != nil {
		sent.Abort(false)
		done.Abort(false)
	} else {
		sent.SetTotal(-1, true)
		done.SetTotal(-1, true)
	}
	prog.Wait()
	return sum, err
}

// reportLoad prints the summary and checks the SLOs.
func reportLoad(w io.Writer, f *loadFlags, sum *loadgen.Summary, slos []loadgen.SLO) error {
	outcomes := loadgen.Check(sum, slos)
	if f.json {
		type checked struct {
			SLO   string   `json:"slo"`
			Met   bool     `json:"met"`
			Value *float64 `json:"value,omitempty"`
		}
		var checks []checked
		for _, o := range outcomes {
			c := checked{SLO: o.Text, Met: o.Met}
			if o.Known {
				v := o.Value
				c.Value = &v
			}
			checks = append(checks, c)
		}
		// The summary's own JSON, with the checks added beside its fields.
		b, err := json.Marshal(sum)
		if err != nil {
			return err
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return err
		}
		if len(checks) > 0 {
			m["checks"] = checks
		}
		if err := json.NewEncoder(w).Encode(m); err != nil {
			return err
		}
	} else {
		sum.WriteText(w)
		if len(outcomes) > 0 {
			fmt.Fprintln(w, "checks")
			for _, o := range outcomes {
				mark := "✓"
				if !o.Met {
					mark = "✗"
				}
				fmt.Fprintf(w, "  %s %s\n", mark, o)
			}
		}
	}
	var missed []string
	for _, o := range outcomes {
		if !o.Met {
			missed = append(missed, o.String())
		}
	}
	if len(missed) > 0 {
		return &exitError{code: exitSLOMissed, err: fmt.Errorf("%d of %d SLOs missed: %s", len(missed), len(outcomes), strings.Join(missed, "; "))}
	}
	return nil
}
