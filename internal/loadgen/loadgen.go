// Package loadgen sends images to a Glimpse server and measures what comes
// back: the client behind `glimpse load` and `glimpse pump --to`.
//
// A run is closed-loop (a fixed number of senders, each sending its next
// image when the last one is answered) or open-loop (sends at a rate,
// Poisson or evenly spaced, whatever the server's pace). Open-loop latency
// counts from the scheduled send, so a server that falls behind shows it in
// the numbers instead of slowing the load down. Each image is followed to
// its end, synchronously with ?wait= or by polling, and the Summary splits
// latency into upload, queue wait and processing.
package loadgen

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/glimpse-oss/glimpse/internal/job"
)

// Config says where and how to send.
type Config struct {
	// URL is the server's base URL, such as http://127.0.0.1:8080.
	URL    string
	APIKey string
	// Features is the ?features= list ("" for the server's default).
	Features string
	// Wait, when positive, asks the server to answer with the result
	// (?wait=); otherwise the client uploads, then polls.
	Wait time.Duration
	// PollMin and PollMax bound the polling interval, which doubles from
	// PollMin to PollMax; defaults 20ms and 1s.
	PollMin, PollMax time.Duration
	// Timeout bounds one image from send to answer; default 2m.
	Timeout time.Duration
	// Concurrency is the number of senders of a closed-loop run (default
	// 4); in an open-loop run a positive Concurrency caps the requests in
	// flight, making sends late (and counted so) when reached.
	Concurrency int
	// Rate, when positive, makes the run open-loop at Rate sends per
	// second with the given Arrivals (default Poisson) drawn from Seed.
	Rate     float64
	Arrivals Arrivals
	Seed     uint64
	// Count stops after this many sends; Duration stops sending after this
	// long. Zero means no limit; the run also ends with its Source.
	Count    int
	Duration time.Duration
	// Unique sends every request with its own Idempotency-Key, so that an
	// image sent twice is processed twice rather than answered from the
	// first result.
	Unique bool
	// Manifest, when set, gives the expected answers of images that carry
	// none; PlaceTolerance (degrees, default 1e-5) bounds a right position.
	Manifest       *Manifest
	PlaceTolerance float64
	// OnResult, when set, is called with each result as it arrives, from
	// one goroutine at a time.
	OnResult func(Result)
	// HTTPClient defaults to a client sized for Concurrency.
	HTTPClient *http.Client
}

// Validate reports the first problem with c.
func (c *Config) Validate() error {
	u, err := url.Parse(c.URL)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fmt.Errorf("loadgen: url %q: want http(s)://host[:port]", c.URL)
	case c.Concurrency < 0:
		return fmt.Errorf("loadgen: concurrency %d: want 1 or more", c.Concurrency)
	case c.Rate < 0:
		return fmt.Errorf("loadgen: rate %g: want a positive number of images per second", c.Rate)
	case c.Count < 0:
		return fmt.Errorf("loadgen: count %d: want 0 (no limit) or more", c.Count)
	case c.Duration < 0 || c.Wait < 0 || c.Timeout < 0 || c.PollMin < 0 || c.PollMax < 0:
		return errors.New("loadgen: durations must not be negative")
	case c.PollMin > 0 && c.PollMax > 0 && c.PollMin > c.PollMax:
		return fmt.Errorf("loadgen: poll interval %s–%s: the minimum is above the maximum", c.PollMin, c.PollMax)
	}
	if c.Features != "" {
		if _, err := job.ParseFeatures(c.Features); err != nil {
			return fmt.Errorf("loadgen: %v", err)
		}
	}
	if c.Arrivals != "" {
		if _, err := ParseArrivals(string(c.Arrivals)); err != nil {
			return err
		}
	}
	return nil
}

// Progress is a live snapshot of a run's counters.
type Progress struct {
	Sent, Done, Failed, InFlight int64
	// Total is the number of sends planned, 0 when unknown.
	Total int64
	// Elapsed is the time since the run started.
	Elapsed time.Duration
}

// Runner runs one load.
type Runner struct {
	cfg    Config
	client *client

	start    atomic.Int64 // unix nanoseconds; 0 before Run
	sent     atomic.Int64
	done     atomic.Int64
	failed   atomic.Int64
	inFlight atomic.Int64
	maxIn    atomic.Int64
}

// New checks cfg and returns a Runner.
func New(cfg Config) (*Runner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Concurrency == 0 && cfg.Rate == 0 {
		cfg.Concurrency = 4
	}
	if cfg.Arrivals == "" {
		cfg.Arrivals = Poisson
	}
	if cfg.PollMin == 0 {
		cfg.PollMin = 20 * time.Millisecond
	}
	if cfg.PollMax == 0 {
		cfg.PollMax = time.Second
	}
	cfg.PollMin = min(cfg.PollMin, cfg.PollMax)
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Minute
	}
	if cfg.PlaceTolerance == 0 {
		cfg.PlaceTolerance = DefaultPlaceTolerance
	}
	hc := cfg.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = max(cfg.Concurrency, 64)
		hc = &http.Client{Transport: tr}
	}
	base, _ := url.Parse(cfg.URL)
	c := &client{base: base, http: hc, apiKey: cfg.APIKey, features: cfg.Features, wait: cfg.Wait,
		pollMin: cfg.PollMin, pollMax: cfg.PollMax}
	if cfg.Unique {
		var b [6]byte
		_, _ = rand.Read(b[:])
		c.unique = "load-" + hex.EncodeToString(b[:])
	}
	return &Runner{cfg: cfg, client: c}, nil
}

// Progress returns the run's counters now; safe to call from any goroutine.
func (r *Runner) Progress() Progress {
	p := Progress{Sent: r.sent.Load(), Done: r.done.Load(), Failed: r.failed.Load(),
		InFlight: r.inFlight.Load(), Total: int64(r.cfg.Count)}
	if s := r.start.Load(); s != 0 {
		p.Elapsed = time.Since(time.Unix(0, s))
	}
	return p
}

// Run sends the images of src until it ends, Count sends were made,
// Duration passed or ctx is cancelled, waits for every answer, and returns
// the summary. Cancelling ctx abandons the requests in flight; the summary
// then counts them as errors.
func (r *Runner) Run(ctx context.Context, src Source) (*Summary, error) {
	begin := time.Now()
	r.start.Store(begin.UnixNano())

	// Prepare images ahead of the schedule, so reading or generating them
	// does not delay sends.
	stop := make(chan struct{})
	items := make(chan Item, 2*max(r.cfg.Concurrency, 8))
	var srcErr error
	go func() {
		defer close(items)
		for n := 0; r.cfg.Count == 0 || n < r.cfg.Count; n++ {
			it, err := src.Next(ctx)
			if err != nil {
				if err != io.EOF && ctx.Err() == nil {
					srcErr = err
				}
				return
			}
			if it.Want == nil && r.cfg.Manifest != nil {
				it.Want = r.cfg.Manifest.Lookup(it.Name)
			}
			select {
			case items <- it:
			case <-stop:
				return
			}
		}
	}()
	defer func() {
		close(stop)
		for range items { // let the producer see stop
		}
	}()

	var (
		mu      sync.Mutex
		results []Result
		wg      sync.WaitGroup
		late    int
		maxLag  time.Duration
	)
	var deadline <-chan time.Time
	if r.cfg.Duration > 0 {
		t := time.NewTimer(r.cfg.Duration)
		defer t.Stop()
		deadline = t.C
	}
	record := func(res Result) {
		mu.Lock()
		defer mu.Unlock()
		results = append(results, res)
		if res.Status == StatusDone {
			r.done.Add(1)
		} else {
			r.failed.Add(1)
		}
		if r.cfg.OnResult != nil {
			r.cfg.OnResult(res)
		}
	}
	send := func(it Item, at time.Time, seq int) {
		n := r.inFlight.Add(1)
		for {
			m := r.maxIn.Load()
			if n <= m || r.maxIn.CompareAndSwap(m, n) {
				break
			}
		}
		r.sent.Add(1)
		ictx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
		res := r.client.send(ictx, it, at, seq)
		cancel()
		r.inFlight.Add(-1)
		record(res)
	}

	if r.cfg.Rate > 0 {
		r.openLoop(ctx, items, deadline, begin, &wg, send, &late, &maxLag)
	} else {
		var seq atomic.Int64
		for range r.cfg.Concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-deadline:
						return
					case <-ctx.Done():
						return
					default:
					}
					select {
					case it, ok := <-items:
						if !ok {
							return
						}
						send(it, time.Now(), int(seq.Add(1)))
					case <-deadline:
						return
					case <-ctx.Done():
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	elapsed := time.Since(begin)
	mu.Lock()
	defer mu.Unlock()
	s := summarize(results, elapsed, int(r.maxIn.Load()), late, maxLag)
	for _, res := range results {
		if res.Want == nil || res.Status != StatusDone {
			continue
		}
		if s.Accuracy == nil {
			s.Accuracy = &Accuracy{}
		}
		s.Accuracy.score(res.Name, res.Want, res.Result, r.cfg.PlaceTolerance)
	}
	if srcErr != nil {
		return s, srcErr
	}
	return s, ctx.Err()
}

// openLoop dispatches sends on the schedule, each in its own goroutine.
func (r *Runner) openLoop(ctx context.Context, items <-chan Item, deadline <-chan time.Time, begin time.Time,
	wg *sync.WaitGroup, send func(Item, time.Time, int), late *int, maxLag *time.Duration) {
	sched := NewSchedule(r.cfg.Rate, r.cfg.Arrivals, r.cfg.Seed)
	var sem chan struct{}
	if r.cfg.Concurrency > 0 {
		sem = make(chan struct{}, r.cfg.Concurrency)
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for seq := 1; ; seq++ {
		at := begin.Add(sched.Next())
		if r.cfg.Duration > 0 && at.Sub(begin) >= r.cfg.Duration {
			return
		}
		if d := time.Until(at); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-ctx.Done():
				return
			case <-deadline:
				return
			}
		}
		var it Item
		var ok bool
		select {
		case it, ok = <-items:
			if !ok {
				return
			}
		case <-ctx.Done():
			return
		}
		if sem != nil {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
		if lag := time.Since(at); lag > LateAfter {
			*late++
			*maxLag = max(*maxLag, lag)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if sem != nil {
				defer func() { <-sem }()
			}
			send(it, at, seq)
		}()
	}
}
