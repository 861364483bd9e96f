package e2e

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromiumPath is where Debian's chromium package puts the browser.
const chromiumPath = "/usr/bin/chromium"

// browser is one headless Chromium tab driven over the DevTools protocol,
// collecting console errors and uncaught exceptions as they happen.
type browser struct {
	t   *testing.T
	ctx context.Context

	mu     sync.Mutex
	errors []string
}

// newBrowser starts Chromium with a fresh profile and a fake camera. It
// skips (or fails, with GLIMPSE_STRICT_TESTS=1) when Chromium is missing.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("GLIMPSE_STRICT_TESTS") == "1" {
			t.Fatalf("chromium missing at %s: run scripts/setup.sh", chromiumPath)
		}
		t.Skipf("chromium missing at %s: run scripts/setup.sh", chromiumPath)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.WindowSize(1280, 900),
	}
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx}
	err := chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
				var parts []string
				for _, a := range ev.Args {
					parts = append(parts, strings.Trim(string(a.Value), `"`)+a.Description)
				}
				b.addError("console." + string(ev.Type) + ": " + strings.Join(parts, " "))
			}
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			b.addError(fmt.Sprintf("uncaught exception at %s:%d: %s", d.URL, d.LineNumber, msg))
		}
	})
	if err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return b
}

func (b *browser) addError(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.errors = append(b.errors, s)
}

// checkConsole fails the test for every console error seen so far.
func (b *browser) checkConsole(page string) {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range b.errors {
		b.t.Errorf("%s: %s", page, e)
	}
	b.errors = nil
}

// do runs actions, failing the test on error.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression into T.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitJS waits until a JavaScript expression is true.
func (b *browser) waitJS(what, expr string, wait time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(wait)
	for !eval[bool](b, expr) {
		if time.Now().After(deadline) {
			b.t.Fatalf("%s: still not true after %v: %s\npage: %s", what, wait, expr,
				eval[string](b, `document.querySelector('main').innerText.slice(0, 2000)`))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// screenshot saves a full-page PNG under the artifacts directory.
func (b *browser) screenshot(name string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(artifactsDir(b.t), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s", path)
	return path
}

// artifactsDir is $GLIMPSE_ARTIFACTS, else e2e/testdata/out (git-ignored by
// the .gitignore written there).
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("GLIMPSE_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("testdata", "out")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		_ = os.WriteFile(filepath.Join(dir, ".gitignore"), []byte("*\n"), 0o644)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// largeNoiseJPEG writes a JPEG of random pixels of about minBytes or more.
func largeNoiseJPEG(t *testing.T, path string, minBytes int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	w, h := 2400, 1800
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{uint8(rng.IntN(256)), uint8(rng.IntN(256)), uint8(rng.IntN(256)), 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 98}); err != nil {
		t.Fatal(err)
	}
	if buf.Len() < minBytes {
		t.Fatalf("noise JPEG is %d bytes; want at least %d", buf.Len(), minBytes)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// rowsIn is a JavaScript expression listing the upload rows as
// {name, state, info}.
const rowsJS = `[...document.querySelectorAll('#queue .qrow')].map(r => ({name: r.querySelector('.qname').textContent, state: r.dataset.state, info: r.querySelector('.qinfo').textContent, id: r.dataset.id || ''}))`

type uploadRow struct {
	Name, State, Info, ID string
}

func (b *browser) rowState(name string) string {
	return eval[string](b, fmt.Sprintf(`(%s).filter(r => r.name === %q).map(r => r.state).join(',')`, rowsJS, name))
}

// TestUI drives the web interface in Chromium against a real serve: uploads
// through the file input (two files, live to done through server-sent
// events), a picture from the fake camera, a pre-signed upload of a large
// file, a non-image, every page at desktop and phone size, and no console
// errors anywhere.
func TestUI(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	b := newBrowser(t)
	s := startServe(t, t.TempDir(), "--workers", "2", "--log-format", "json")
	chelsea, dog := photo(t, "chelsea.png"), photo(t, "dog.jpg")

	// Upload page: two files through the file input reach done live.
	b.do("open upload page",
		chromedp.Navigate(s.URL+"/#/upload"),
		chromedp.WaitVisible("#drop"),
	)
	b.waitJS("live updates connect", `document.querySelector('#live').classList.contains('on')`, 20*time.Second)
	b.do("choose two files", chromedp.SetUploadFiles("#file-input", []string{chelsea, dog}))
	b.waitJS("both rows done", fmt.Sprintf(`(%s).filter(r => r.state === 'done').length === 2`, rowsJS), 2*time.Minute)
	if info := eval[string](b, fmt.Sprintf(`(%s).find(r => r.name === 'chelsea.png').info`, rowsJS)); !strings.Contains(info, "cat") {
		t.Errorf("chelsea.png row says %q; want its top label (a cat)", info)
	}
	// The rows went from queued to done without the page asking: the UI
	// never polls an image (GET /v1/images/{id}) while its stream is up.
	if strings.Contains(s.logs.String(), `"route":"/v1/images/{id}","status":200`) {
		t.Errorf("the upload page read an image by id; want updates from GET /v1/events only")
	}
	b.screenshot("upload-desktop")
	b.checkConsole("upload page")

	// A photo with a face, for the detail page's overlay.
	b.do("choose the astronaut", chromedp.SetUploadFiles("#file-input", []string{photo(t, "astronaut.png")}))
	b.waitJS("astronaut done", fmt.Sprintf(`(%s).some(r => r.name === 'astronaut.png' && r.state === 'done')`, rowsJS), 2*time.Minute)

	// A non-image shows a readable error.
	txt := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(txt, []byte("these are not the pixels you are looking for\n"), 0o644)
	b.do("choose a text file", chromedp.SetUploadFiles("#file-input", []string{txt}))
	b.waitJS("text file refused", fmt.Sprintf(`(%s).some(r => r.name === 'notes.txt' && r.state === 'error')`, rowsJS), 30*time.Second)
	if info := eval[string](b, fmt.Sprintf(`(%s).find(r => r.name === 'notes.txt').info`, rowsJS)); !strings.Contains(info, "not a recognised image") {
		t.Errorf("notes.txt row says %q; want the server's plain explanation", info)
	}

	// A large file goes through a pre-signed URL.
	big := filepath.Join(t.TempDir(), "large.jpg")
	largeNoiseJPEG(t, big, 6<<20)
	b.do("choose a large file", chromedp.SetUploadFiles("#file-input", []string{big}))
	b.waitJS("large file done", fmt.Sprintf(`(%s).some(r => r.name === 'large.jpg' && r.state === 'done')`, rowsJS), 2*time.Minute)
	for _, route := range []string{`"route":"/v1/uploads","status":201`, `"route":"/v1/uploads/{id}","status":202`} {
		if !strings.Contains(s.logs.String(), route) {
			t.Errorf("server log has no %s; want the large file sent through a pre-signed URL", route)
		}
	}

	// The camera tab takes a picture with Chromium's fake camera.
	b.do("start the camera",
		chromedp.Click(`.tab[data-tab="camera"]`),
		chromedp.Click("#camera-start"),
		chromedp.WaitEnabled("#camera-take"),
	)
	b.waitJS("video playing", `document.querySelector('#camera-video').videoWidth > 0`, 20*time.Second)
	b.do("take a picture", chromedp.Click("#camera-take"))
	b.waitJS("camera picture done", fmt.Sprintf(`(%s).some(r => r.name.startsWith('camera-') && r.state === 'done')`, rowsJS), 2*time.Minute)
	cam := eval[uploadRow](b, fmt.Sprintf(`(%s).find(r => r.name.startsWith('camera-'))`, rowsJS))
	if cam.Info == "" || cam.ID == "" {
		t.Errorf("camera row = %+v; want a result", cam)
	}
	b.screenshot("camera-desktop")
	b.checkConsole("camera")

	// Images page: the live table.
	b.do("open images page", chromedp.Navigate(s.URL+"/#/images"))
	b.waitJS("table rows", `document.querySelectorAll('#rows tr[data-status="done"]').length >= 5`, 30*time.Second)
	b.waitJS("thumbnails", `[...document.querySelectorAll('#rows img.thumb')].some(i => !i.hidden && i.naturalWidth > 0)`, 20*time.Second)
	b.screenshot("images-desktop")
	b.do("filter by status", chromedp.SetValue(`#filters select[name="status"]`, "failed"), chromedp.Click(`#filters button[type="submit"]`))
	b.waitJS("filtered table is empty", `location.hash.includes('status=failed') && !document.querySelector('#images-empty').hidden`, 20*time.Second)
	b.checkConsole("images page")

	// Image detail with overlays and the near-duplicate list.
	var chelseaID, astronautID string
	req, _ := http.NewRequest("GET", s.URL+"/v1/images?limit=50", nil)
	var list struct{ Images []imageView }
	do(t, req, &list)
	for _, im := range list.Images {
		switch im.Filename {
		case "chelsea.png":
			chelseaID = im.ID
		case "astronaut.png":
			astronautID = im.ID
		}
	}
	b.do("open detail", chromedp.Navigate(s.URL+"/#/image/"+chelseaID))
	b.waitJS("detail rendered", `document.querySelectorAll('.d-labels .bar').length > 0 && document.querySelector('.d-img').naturalWidth > 0`, 30*time.Second)
	b.waitJS("overlay sized", `document.querySelector('.overlay').getAttribute('viewBox') === '0 0 451 300'`, 5*time.Second)
	b.screenshot("detail-desktop")
	b.do("open astronaut", chromedp.Navigate(s.URL+"/#/image/"+astronautID))
	b.waitJS("face box drawn", `document.querySelectorAll('.overlay rect.face').length === 1 && document.querySelector('.d-img').naturalWidth > 0`, 30*time.Second)
	// The box sits on the face in display coordinates: inside the image's box.
	if ok := eval[bool](b, `(() => { const r = document.querySelector('.overlay rect.face').getBoundingClientRect(), i = document.querySelector('.d-img').getBoundingClientRect();
		return r.width > 10 && r.left >= i.left && r.right <= i.right + 1 && r.top >= i.top && r.bottom <= i.bottom + 1; })()`); !ok {
		t.Errorf("the face box is not drawn over the image")
	}
	// The face's score is readable: its label is drawn at a visible size.
	if h := eval[float64](b, `document.querySelector('.overlay text').getBoundingClientRect().height`); h < 6 {
		t.Errorf("the face label is %.1f px tall; want it readable", h)
	}
	b.screenshot("detail-faces-desktop")
	b.checkConsole("detail page")

	// Dashboard: every chart draws, or says there is no data yet.
	b.do("open dashboard", chromedp.Navigate(s.URL+"/#/dashboard"))
	b.waitJS("charts drawn", `[...document.querySelectorAll('.chart .plot')].every(p => p.querySelector('svg, .nodata'))`, 30*time.Second)
	// The day's throughput is a line over every hour, zeros included, not
	// a dot for the one hour that had images.
	if n := eval[int](b, `(document.querySelector('#c-throughput .plot path.series')?.getAttribute('d') || '').split(/[ML]/).length - 1`); n < 24 {
		t.Errorf("the day's throughput line has %d points; want one per hour", n)
	}
	b.screenshot("dashboard-desktop")
	b.checkConsole("dashboard")

	// The API reference draws itself from /openapi.json, offline.
	b.do("open the API reference", chromedp.Navigate(s.URL+"/docs"))
	b.waitJS("operations listed", `[...document.querySelectorAll('#docs a')].some(a => a.textContent === 'POST /v1/images') && !!document.querySelector('#schema-Image')`, 30*time.Second)
	b.screenshot("docs-desktop")
	b.checkConsole("API reference")

	// Phone size: every page fits the width.
	b.do("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)))
	for _, p := range []struct{ name, hash, ready string }{
		{"upload", "#/upload", `!!document.querySelector('#drop')`},
		{"images", "#/images", `document.querySelectorAll('#rows tr').length >= 5`},
		{"detail", "#/image/" + astronautID, `document.querySelectorAll('.d-labels .bar').length > 0 && document.querySelector('.d-img').naturalWidth > 0`},
		{"dashboard", "#/dashboard", `[...document.querySelectorAll('.chart .plot')].every(p => p.querySelector('svg, .nodata'))`},
	} {
		b.do("open "+p.name+" on a phone", chromedp.Navigate(s.URL+"/"+p.hash))
		b.waitJS(p.name+" on a phone", p.ready, 30*time.Second)
		if w := eval[int](b, `document.documentElement.scrollWidth`); w > 390 {
			wide := eval[string](b, `[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > 391).slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right)).join(', ')`)
			t.Errorf("%s page is %d px wide on a 390 px phone; want no sideways scrolling (too wide: %s)", p.name, w, wide)
		}
		b.screenshot(p.name + "-phone")
	}
	// The camera works at phone size too.
	b.do("phone camera", chromedp.Navigate(s.URL+"/#/upload"), chromedp.Click(`.tab[data-tab="camera"]`), chromedp.Click("#camera-start"), chromedp.WaitEnabled("#camera-take"))
	b.waitJS("phone video playing", `document.querySelector('#camera-video').videoWidth > 0`, 20*time.Second)
	b.screenshot("camera-phone")
	b.checkConsole("phone pages")
}

// TestUISignedURLRefusals checks over plain HTTP that an expired and a
// tampered pre-signed upload URL get 403 with a plain explanation.
// TestUIBusyBackOff: with one upload allowed in flight, three files chosen
// at once get 429s; the page waits as Retry-After says and sends them again,
// and all three reach done.
func TestUIBusyBackOff(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	b := newBrowser(t)
	s := startServe(t, t.TempDir(), "--workers", "2", "--max-concurrent-uploads", "1", "--log-format", "json")
	b.do("open upload page",
		chromedp.Navigate(s.URL+"/#/upload"),
		chromedp.WaitVisible("#drop"),
	)
	b.waitJS("live updates connect", `document.querySelector('#live').classList.contains('on')`, 20*time.Second)
	files := []string{photo(t, "chelsea.png"), photo(t, "coffee.png"), photo(t, "dog.jpg")}
	b.do("choose three files", chromedp.SetUploadFiles("#file-input", files))
	b.waitJS("all three done", fmt.Sprintf(`(%s).filter(r => r.state === 'done').length === 3`, rowsJS), 2*time.Minute)
	retried := eval[float64](b, `[...document.querySelectorAll('#queue .qrow')].reduce((n, r) => n + Number(r.dataset.retries || 0), 0)`)
	if retried < 1 {
		t.Errorf("no row was sent again; want the uploads over the cap retried after their 429")
	}
	if !strings.Contains(s.logs.String(), `"status":429`) {
		t.Errorf("the server logged no 429; the cap did not bite, so the test proves nothing")
	}
	t.Logf("three files under a cap of one upload at a time: all done, %v sends repeated after a 429", retried)
	b.checkConsole("busy back-off")
}

func TestUISignedURLRefusals(t *testing.T) {
	s := startServe(t, t.TempDir(), "--workers", "1")
	jpg := readPhoto(t, "dog.jpg")
	ticket := func(expiresIn int) (tk struct {
		ID        string            `json:"id"`
		UploadURL string            `json:"upload_url"`
		Method    string            `json:"method"`
		Headers   map[string]string `json:"headers"`
	}) {
		t.Helper()
		body := fmt.Sprintf(`{"filename":"dog.jpg","content_type":"image/jpeg","size":%d,"expires_in":%d}`, len(jpg), expiresIn)
		req, _ := http.NewRequest("POST", s.URL+"/v1/uploads", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if resp := do(t, req, &tk); resp.StatusCode != 201 {
			t.Fatalf("POST /v1/uploads = %d", resp.StatusCode)
		}
		return tk
	}
	put := func(rawURL string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("PUT", rawURL, bytes.NewReader(jpg))
		req.Header.Set("Content-Type", "image/jpeg")
		var p struct {
			Detail string `json:"detail"`
		}
		resp := do(t, req, &p)
		return resp.StatusCode, p.Detail
	}

	expired := ticket(1)
	tampered := ticket(600)
	time.Sleep(2100 * time.Millisecond)
	if code, detail := put(expired.UploadURL); code != 403 || !strings.Contains(detail, "expired") {
		t.Errorf("expired URL: %d %q; want 403 saying it expired", code, detail)
	}
	u, _ := url.Parse(tampered.UploadURL)
	q := u.Query()
	q.Set("obj", strings.Replace(q.Get("obj"), "upl_", "upl_f", 1)[:len(q.Get("obj"))])
	u.RawQuery = q.Encode()
	if code, detail := put(u.String()); code != 403 || detail == "" {
		t.Errorf("tampered URL: %d %q; want 403 with a detail", code, detail)
	}
	// The untampered URL still works, once.
	if code, _ := put(tampered.UploadURL); code != 202 {
		t.Errorf("valid URL: %d; want 202", code)
	}
	if code, detail := put(tampered.UploadURL); code != 403 || !strings.Contains(detail, "already used") {
		t.Errorf("reused URL: %d %q; want 403 saying it was used", code, detail)
	}
}
