package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/glimpse-oss/glimpse/internal/analyzer/classify"
	"github.com/glimpse-oss/glimpse/internal/imagedata"
	"github.com/glimpse-oss/glimpse/internal/job"
)

type classifyFlags struct {
	models  string
	ortLib  string
	top     int
	workers int
	json    bool
	noProg  bool
}

func newClassifyCmd(g *globals) *cobra.Command {
	f := &classifyFlags{}
	cmd := &cobra.Command{
		Use:   "classify FILE|DIR...",
		Short: "Label image files offline with the local model (no server needed)",
		Long: `classify runs the classifier on local files and prints the top labels of each.
Directories are walked recursively for .jpg, .jpeg, .png, .gif and .webp files.
With many files it shows a progress bar on a terminal; results always go to stdout,
so 'glimpse classify photos/ --json > labels.jsonl' works as you would expect.

Exit status: 0 when every file was labelled, 1 when any failed (each failure is reported).`,
		Example: `  glimpse classify cat.jpg
  glimpse classify --top 3 photos/
  glimpse classify --json *.png | jq -r '.labels[0].label'`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runClassify(cmd.Context(), g, f, args)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.models, "models", "", "directory holding the model and labels (default: search)")
	fl.StringVar(&f.ortLib, "ort-lib", "", "path to libonnxruntime.so.1 (default: search)")
	fl.IntVar(&f.top, "top", 5, "labels to print per file")
	fl.IntVar(&f.workers, "workers", runtime.NumCPU(), "files classified in parallel")
	fl.BoolVar(&f.json, "json", false, "print one JSON object per file (JSON Lines)")
	fl.BoolVar(&f.noProg, "no-progress", false, "never show a progress bar")
	return cmd
}

// classified is one file's outcome, also the --json line.
type classified struct {
	File   string      `json:"file"`
	Width  int         `json:"width,omitempty"`
	Height int         `json:"height,omitempty"`
	Labels []job.Label `json:"labels,omitempty"`
	Error  string      `json:"error,omitempty"`
	Millis float64     `json:"ms"`
}

func runClassify(ctx context.Context, g *globals, f *classifyFlags, args []string) error {
	if f.top < 1 || f.top > 1000 {
		return fmt.Errorf("--top %d: want 1 to 1000", f.top)
	}
	files, err := expandImageArgs(args)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no image files found in %s", strings.Join(args, " "))
	}
	model, err := loadModel(f.models, f.ortLib)
	if err != nil {
		return err
	}
	workers := max(1, min(f.workers, len(files)))

	var bar *mpb.Bar
	var prog *mpb.Progress
	if len(files) > 1 && !f.noProg && isTerminal(g.stderr) {
		prog = mpb.NewWithContext(ctx, mpb.WithOutput(g.stderr), mpb.WithWidth(40))
		bar = prog.AddBar(int64(len(files)),
			mpb.PrependDecorators(decor.Name("classify "), decor.CountersNoUnit("%d/%d")),
			mpb.AppendDecorators(decor.Percentage(), decor.Name(" "), decor.AverageSpeed(0, "%.1f img/s"), decor.Name(" "), decor.AverageETA(decor.ET_STYLE_GO)),
		)
	}

	results := make([]classified, len(files))
	next := make(chan int)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cls, err := classify.New(classify.Config{Model: model, TopK: f.top})
			if err != nil {
				errs <- err
				for range next { // keep the feeder moving
				}
				return
			}
			defer cls.Close()
			for i := range next {
				results[i] = classifyFile(ctx, cls, files[i])
				if bar != nil {
					bar.Increment()
				}
			}
		}()
	}
feed:
	for i := range files {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if prog != nil {
		if ctx.Err() != nil {
			bar.Abort(false)
		}
		prog.Wait()
	}
	select {
	case err := <-errs:
		return err
	default:
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}

	failed := 0
	enc := json.NewEncoder(g.stdout)
	for _, r := range results {
		if r.Error != "" {
			failed++
		}
		if f.json {
			if err := enc.Encode(r); err != nil {
				return err
			}
			continue
		}
		printClassified(g.stdout, r)
	}
	if failed > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d of %d files could not be classified", failed, len(files))}
	}
	return nil
}

func classifyFile(ctx context.Context, cls *classify.Classifier, path string) classified {
	start := time.Now()
	r := classified{File: path}
	defer func() { r.Millis = float64(time.Since(start).Microseconds()) / 1000 }()
	fh, err := os.Open(path)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	limits := imagedata.DefaultLimits()
	b, err := imagedata.ReadAll(fh, limits)
	fh.Close()
	if err != nil {
		r.Error = err.Error()
		return r
	}
	img, err := imagedata.Decode(b, limits, imagedata.DecodeOptions{MinSide: cls.MinSide()})
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.Width, r.Height = img.DisplaySize()
	labels, err := cls.Classify(ctx, img.Image)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.Labels = labels
	r.Millis = float64(time.Since(start).Microseconds()) / 1000
	return r
}

func printClassified(w io.Writer, r classified) {
	if r.Error != "" {
		fmt.Fprintf(w, "%s\n   error: %s\n", r.File, r.Error)
		return
	}
	fmt.Fprintf(w, "%s  (%d×%d)\n", r.File, r.Width, r.Height)
	// The scores line up under the file's longest label (ImageNet's run to
	// about 80 characters with their synonyms), cut at labelWidth.
	width := 0
	for _, l := range r.Labels {
		width = max(width, min(utf8.RuneCountInString(l.Label), labelWidth))
	}
	for i, l := range r.Labels {
		label := l.Label
		if utf8.RuneCountInString(label) > labelWidth {
			label = string([]rune(label)[:labelWidth-1]) + "…"
		}
		pad := strings.Repeat(" ", width-utf8.RuneCountInString(label))
		n := int(l.Score*20 + 0.5)
		fmt.Fprintf(w, "  %d. %s%s %5.1f%% %s\n", i+1, label, pad, l.Score*100, strings.Repeat("█", n))
	}
}

// labelWidth is the widest label column of classify's text output.
const labelWidth = 48

var imageExts = map[string]bool{".jpg": true, ".jpeg": true, ".png": true, ".gif": true, ".webp": true}

// expandImageArgs turns files and directories into a list of files; files
// named directly are kept whatever their extension (their bytes decide).
func expandImageArgs(args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil || !st.IsDir() {
			// A file, or a path that cannot be read: classified (or
			// reported as failed) with the others, so that one bad name
			// does not cost the rest their results.
			out = append(out, a)
			continue
		}
		err = filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && imageExts[strings.ToLower(filepath.Ext(p))] {
				out = append(out, p)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
