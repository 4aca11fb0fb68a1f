// Package browser drives Debian's Chromium from tests (through chromedp): a
// headless browser that can reach only loopback, records every console
// error and uncaught exception of the pages it loads, and saves screenshots
// as files a person can open.
//
// A test that needs it fails (never skips) when Chromium is missing: the
// browser tests are part of the README's test command, and .ci/run installs
// Chromium. AGORA_CHROMIUM names another binary.
package browser

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agoranet/agora/internal/poll"
	"github.com/chromedp/chromedp"
)

// Browser is one headless Chromium with one tab, owned by a test.
type Browser struct {
	t   testing.TB
	ctx context.Context

	mu       sync.Mutex
	problems []string
}

// Size is a viewport in CSS pixels.
type Size struct{ Width, Height int64 }

var (
	// Desktop is a laptop screen.
	Desktop = Size{1280, 860}
	// Phone is a phone-sized screen (an iPhone 14's viewport).
	Phone = Size{390, 844}
)

// Binary finds Chromium: $AGORA_CHROMIUM, else chromium or
// chromium-browser on the PATH.
func Binary() (string, error) {
	if p := os.Getenv("AGORA_CHROMIUM"); p != "" {
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no Chromium found: install it (apt-get install chromium) or set AGORA_CHROMIUM")
}

// New starts a browser for t at size; it is stopped when t ends. The
// browser resolves no host but loopback, so a page that reaches for the
// internet (a CDN, a font) fails to load it and logs the error.
func New(t testing.TB, size Size) *Browser {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.NoSandbox, // CI runs as root
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"),
		chromedp.WindowSize(int(size.Width), int(size.Height)),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	b := &Browser{t: t, ctx: ctx}
	// Subscribe before the first page, so no message is missed; the reader
	// ends when the tab's context does.
	messages := chromedp.Console(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() || m.Type == "assert" {
				b.mu.Lock()
				b.problems = append(b.problems, fmt.Sprintf("%s %s:%d %s", m.Type, m.URL, m.Line+1, m.Text))
				b.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
		wg.Wait()
	})
	if err := b.Do(60*time.Second, chromedp.EmulateViewport(size.Width, size.Height)); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	return b
}

// Do runs steps in the tab with a deadline.
func (b *Browser) Do(timeout time.Duration, steps ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	return chromedp.Do(ctx, steps...)
}

// MustDo is Do that fails the test, with a screenshot of the moment and
// what the console said.
func (b *Browser) MustDo(timeout time.Duration, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := b.Do(timeout, steps...); err != nil {
		b.fail(err)
	}
}

func (b *Browser) fail(err error) {
	b.t.Helper()
	path := b.Screenshot("failure-" + b.t.Name())
	b.t.Fatalf("browser: %v (screenshot %s; console: %s)", err, path, strings.Join(b.Problems(), " | "))
}

// Get runs one action that returns a value, failing the test on error.
func Get[T any](b *Browser, timeout time.Duration, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.fail(err)
	}
	return v
}

// Text is the visible text of the first element matching the CSS selector.
func (b *Browser) Text(timeout time.Duration, sel string) string {
	b.t.Helper()
	return Get(b, timeout, chromedp.Text(sel))
}

// WaitUntil waits until the JavaScript expression is truthy in the page.
func (b *Browser) WaitUntil(timeout time.Duration, expression string) {
	b.t.Helper()
	b.MustDo(timeout+5*time.Second, chromedp.Poll[chromedp.Void](expression,
		chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(100*time.Millisecond)))
}

// WaitAcrossNavigation waits until the JavaScript expression (a boolean)
// is true, riding out the moments a navigation (a form submitted, a link
// followed) tears down the page being evaluated: an evaluation that fails
// then is tried again rather than failing the test.
func (b *Browser) WaitAcrossNavigation(timeout time.Duration, expression string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	var last error
	err := poll.Until(ctx, 100*time.Millisecond, func() bool {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expression))
		last = err
		return err == nil && ok
	})
	if err != nil {
		b.fail(fmt.Errorf("waiting for %s: %w (last evaluation error: %v)", expression, err, last))
	}
}

// Problems are the console errors and uncaught exceptions seen so far.
func (b *Browser) Problems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.problems...)
}

// NoProblems fails the test if any page logged an error.
func (b *Browser) NoProblems() {
	b.t.Helper()
	if p := b.Problems(); len(p) > 0 {
		b.t.Fatalf("the browser console reported %d errors:\n%s", len(p), strings.Join(p, "\n"))
	}
}

// ScreenshotDir is where screenshots go: $AGORA_SCREENSHOTS, else
// agora-screenshots in the system's temp directory.
func ScreenshotDir() string {
	if d := os.Getenv("AGORA_SCREENSHOTS"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "agora-screenshots")
}

// Screenshot saves the whole page as ScreenshotDir()/name.png and returns
// the path ("" when it could not).
func (b *Browser) Screenshot(name string) string {
	b.t.Helper()
	dir := ScreenshotDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	// Quality 100 makes Chromium encode PNG; below it, JPEG.
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	path := filepath.Join(dir, sanitize(name)+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	b.t.Logf("screenshot: %s", path)
	return path
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '-'
	}, s)
}
