package browser

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/agoranet/agora/internal/poll"
	"github.com/agoranet/agora/internal/testkit"
)

// TestBrowserSeesPageAndErrors: the harness loads a loopback page, reads
// its DOM, records a console error and a failed request to the internet,
// and writes a screenshot file.
func TestBrowserSeesPageAndErrors(t *testing.T) {
	l := testkit.Listen(t)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><title>t</title><h1 id="h">hello</h1>
<script>console.error("boom")</script><img src="http://cdn.example.com/x.png">`)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })

	b := New(t, Phone)
	b.MustDo(30*time.Second, chromedp.Navigate("http://"+l.Addr().String()+"/"))
	if text := b.Text(10*time.Second, "#h"); text != "hello" {
		t.Fatalf("heading %q", text)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	err := poll.Until(ctx, 50*time.Millisecond, func() bool {
		p := b.Problems()
		return contains(p, "boom") && contains(p, "cdn.example.com")
	})
	if err != nil {
		t.Fatalf("problems seen: %q, want the console error and the blocked CDN request: %v", b.Problems(), err)
	}
	path := b.Screenshot("harness")
	if raw, err := os.ReadFile(path); err != nil || !bytes.HasPrefix(raw, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("screenshot %q is not a PNG file: %v", path, err)
	}
}

func contains(list []string, s string) bool {
	for _, p := range list {
		if strings.Contains(p, s) {
			return true
		}
	}
	return false
}
