package models

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Upstream locations of the default model and its labels, for machines
// without a shared models directory.
const (
	// DefaultModelURL is the ONNX Model Zoo copy of the default model.
	DefaultModelURL = "https://github.com/onnx/models/raw/main/validated/vision/classification/mobilenet/model/mobilenetv2-12-int8.onnx"
	// DefaultLabelsURL is the npm tarball of @tensorflow-models/mobilenet
	// 2.1.1, whose dist/imagenet_classes.js holds the class names that
	// imagenet_classes.txt is made from.
	DefaultLabelsURL = "https://registry.npmjs.org/@tensorflow-models/mobilenet/-/mobilenet-2.1.1.tgz"
	// labelsJSPath is the labels module's path inside that tarball.
	labelsJSPath = "package/dist/imagenet_classes.js"
)

// maxDownload bounds a download, well above the default model's 3.6 MB.
const maxDownload = 512 << 20

// Fetch puts the default model and its labels into destDir and returns the
// verified model. If destDir already holds them it does nothing; else it
// copies them from a directory Locate would search (such as a shared/models
// of the project) if one holds them, and otherwise downloads them from
// DefaultModelURL and DefaultLabelsURL. Every file is checked against the
// default spec's digests and a bad download is removed. Progress messages go
// to progress, which may be nil.
func Fetch(ctx context.Context, destDir string, progress io.Writer) (*Model, error) {
	return fetch(ctx, destDir, progress, searchDirs(), http.DefaultClient, DefaultModelURL, DefaultLabelsURL)
}

// fetch is Fetch with its sources as parameters, for tests.
func fetch(ctx context.Context, destDir string, progress io.Writer, sources []string, client *http.Client, modelURL, labelsURL string) (*Model, error) {
	if progress == nil {
		progress = io.Discard
	}
	spec := Default()
	if err := os.MkdirAll(destDir, 0o755); err != nil {
		return nil, fmt.Errorf("models: %w", err)
	}
	model := filepath.Join(destDir, spec.File)
	labels := filepath.Join(destDir, spec.Labels)
	if verifyFile(model, spec.SHA256) == nil && verifyFile(labels, spec.LabelsSHA256) == nil {
		fmt.Fprintf(progress, "%s already holds %s\n", destDir, spec.Name)
		return Locate(destDir)
	}
	if src := findDefault(sources, destDir); src != "" {
		for _, name := range []string{spec.File, spec.Labels} {
			fmt.Fprintf(progress, "copying %s from %s\n", name, src)
			if err := copyVerified(filepath.Join(src, name), filepath.Join(destDir, name), spec); err != nil {
				return nil, err
			}
		}
		return Locate(destDir)
	}
	if verifyFile(model, spec.SHA256) != nil {
		fmt.Fprintf(progress, "downloading %s\n", modelURL)
		if err := download(ctx, client, modelURL, func(r io.Reader) error {
			return writeVerified(r, model, spec.SHA256, 0o644)
		}); err != nil {
			return nil, err
		}
	}
	if verifyFile(labels, spec.LabelsSHA256) != nil {
		fmt.Fprintf(progress, "downloading %s\n", labelsURL)
		if err := download(ctx, client, labelsURL, func(r io.Reader) error {
			names, err := labelsFromTarball(r)
			if err != nil {
				return err
			}
			return writeVerified(strings.NewReader(strings.Join(names, "\n")+"\n"), labels, spec.LabelsSHA256, 0o644)
		}); err != nil {
			return nil, err
		}
	}
	return Locate(destDir)
}

// findDefault returns the first of dirs, other than exclude, that holds the
// default model and labels with accepted digests, or "".
func findDefault(dirs []string, exclude string) string {
	spec := Default()
	ex, _ := filepath.Abs(exclude)
	for _, d := range dirs {
		if abs, _ := filepath.Abs(d); abs == ex {
			continue
		}
		if verifyFile(filepath.Join(d, spec.File), spec.SHA256) == nil &&
			verifyFile(filepath.Join(d, spec.Labels), spec.LabelsSHA256) == nil {
			return d
		}
	}
	return ""
}

// copyVerified copies src to dst, accepting the digests spec lists for the
// file's name.
func copyVerified(src, dst string, spec Spec) error {
	accepted := spec.SHA256
	if filepath.Base(src) == spec.Labels {
		accepted = spec.LabelsSHA256
	}
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("models: %w", err)
	}
	defer f.Close()
	return writeVerified(f, dst, accepted, 0o644)
}

// download GETs url and hands the body to use.
func download(ctx context.Context, client *http.Client, url string, use func(io.Reader) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("models: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("models: downloading %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("models: downloading %s: %s", url, resp.Status)
	}
	return use(io.LimitReader(resp.Body, maxDownload))
}

// labelsFromTarball reads the class names out of the labels npm tarball.
func labelsFromTarball(r io.Reader) ([]string, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("models: labels tarball: %w", err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: labels tarball holds no %s", ErrNotFound, labelsJSPath)
		}
		if err != nil {
			return nil, fmt.Errorf("models: labels tarball: %w", err)
		}
		if h.Name == labelsJSPath {
			src, err := io.ReadAll(tr)
			if err != nil {
				return nil, fmt.Errorf("models: labels tarball: %w", err)
			}
			return parseLabelsJS(src)
		}
	}
}

// parseLabelsJS extracts the class names from a JavaScript module of the
// form `IMAGENET_CLASSES = { 0: 'tench, Tinca tinca', 1: 'a, ' + 'b', … }`:
// integer keys from 0 up, values single-quoted strings, possibly joined by +.
func parseLabelsJS(src []byte) ([]string, error) {
	const marker = "IMAGENET_CLASSES = {"
	i := bytes.LastIndex(src, []byte(marker))
	if i < 0 {
		return nil, fmt.Errorf("%w: labels module has no %q", ErrInvalidSpec, marker)
	}
	p := &jsParser{src: src, pos: i + len(marker)}
	var names []string
	for {
		p.space()
		if p.peek() == '}' {
			break
		}
		key, err := p.int()
		if err != nil {
			return nil, err
		}
		if key != len(names) {
			return nil, p.errorf("key %d out of order, want %d", key, len(names))
		}
		p.space()
		if !p.eat(':') {
			return nil, p.errorf("missing ':'")
		}
		var name strings.Builder
		for {
			p.space()
			s, err := p.str()
			if err != nil {
				return nil, err
			}
			name.WriteString(s)
			p.space()
			if !p.eat('+') {
				break
			}
		}
		names = append(names, name.String())
		p.space()
		p.eat(',')
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%w: labels module lists no class", ErrInvalidSpec)
	}
	return names, nil
}

// jsParser is a cursor over the little JavaScript parseLabelsJS reads.
type jsParser struct {
	src []byte
	pos int
}

func (p *jsParser) peek() byte {
	if p.pos < len(p.src) {
		return p.src[p.pos]
	}
	return 0
}

func (p *jsParser) eat(c byte) bool {
	if p.peek() == c {
		p.pos++
		return true
	}
	return false
}

func (p *jsParser) space() {
	for p.pos < len(p.src) && strings.IndexByte(" \t\r\n", p.src[p.pos]) >= 0 {
		p.pos++
	}
}

func (p *jsParser) int() (int, error) {
	start := p.pos
	for p.peek() >= '0' && p.peek() <= '9' {
		p.pos++
	}
	n, err := strconv.Atoi(string(p.src[start:p.pos]))
	if err != nil {
		return 0, p.errorf("want a class index")
	}
	return n, nil
}

// str reads a single-quoted string with backslash escapes of one character.
func (p *jsParser) str() (string, error) {
	if !p.eat('\'') {
		return "", p.errorf("want a quoted class name")
	}
	var b strings.Builder
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		p.pos++
		switch c {
		case '\'':
			return b.String(), nil
		case '\\':
			if p.pos < len(p.src) {
				b.WriteByte(p.src[p.pos])
				p.pos++
			}
		case '\n':
			return "", p.errorf("newline in string")
		default:
			b.WriteByte(c)
		}
	}
	return "", p.errorf("unterminated string")
}

func (p *jsParser) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: labels module at byte %d: %s", ErrInvalidSpec, p.pos, fmt.Sprintf(format, args...))
}
