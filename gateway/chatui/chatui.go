// Package chatui is the gateway's chat page: a static, embedded single page
// that talks to the gateway's own OpenAI-compatible API from the browser.
// Everything that matters happens in the browser — the session key,
// conversations, receipt checks and end-to-end sealing — so this package
// only serves files, with a Content-Security-Policy that allows no inline
// code and no third-party scripts or styles.
package chatui

import (
	"embed"
	"io"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed web
var files embed.FS

// Prefix is where the page and its assets are served: the page at
// "/chat" (and "/chat/"), its assets under "/chat/".
const Prefix = "/chat"

// CSP is the page's Content-Security-Policy. connect-src allows any http(s)
// origin because the explorer the page reads miners' keys from is chosen at
// run time (from the link, the settings, or the gateway): pinning it to the
// gateway's own explorer would let only the gateway pick where the keys come
// from, which is the one thing end-to-end sealing must not trust it for.
// Scripts and styles stay 'self': only the files below ever run.
const CSP = "default-src 'self'; connect-src 'self' http: https:; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler serves the page at Prefix and its assets under Prefix + "/".
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutPrefix(r.URL.Path, Prefix)
		if !ok || (name != "" && !strings.HasPrefix(name, "/")) {
			http.NotFound(w, r)
			return
		}
		name = strings.TrimPrefix(name, "/")
		if name == "" {
			name = "chat.html"
		}
		if !fs.ValidPath(name) {
			http.NotFound(w, r)
			return
		}
		f, err := files.Open(path.Join("web", name))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		st, err := f.Stat()
		rs, seekable := f.(io.ReadSeeker)
		if err != nil || st.IsDir() || !seekable {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		// The page is small and changes with the binary; revalidating every
		// load keeps an upgraded gateway from serving a stale script.
		h.Set("Cache-Control", "no-cache")
		http.ServeContent(w, r, name, st.ModTime(), rs)
	})
}
