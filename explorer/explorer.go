// Package explorer is the network's face in a browser: server-rendered HTML
// pages over the chain (blocks, transactions, accounts, subnets and their
// metagraphs, chain validators, channels) and a JSON twin of every page
// under /api/. It reads the chain only through the SDK client, so it runs
// next to any node (agora node start --explorer ADDR) or against a remote
// one, and it holds no state of its own beyond caches of immutable history.
//
// Pages are html/template with one stylesheet and a few lines of
// JavaScript (live height, nothing else); charts are SVG drawn on the
// server, so every page works with no internet and no JavaScript library.
package explorer

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/agoranet/agora/client"
)

//go:embed web
var webFS embed.FS

// Config configures an Explorer.
type Config struct {
	// Chain is the node (or nodes) the explorer reads; required.
	Chain *client.Client
	// ChatURL, when set, is linked from the header (a gateway's /chat).
	ChatURL string
	// Log gets request failures (never request bodies).
	Log *slog.Logger
	// Gateways are validators' gateway base URLs (ending in /v1), optional:
	// the neuron pages show what each reports of a miner (scores, checks,
	// tokens served), which is not on chain.
	Gateways []string
}

// Explorer serves the pages and the API.
type Explorer struct {
	cfg   Config
	log   *slog.Logger
	pages map[string]*template.Template
	mux   *http.ServeMux
	// routeErr collects routes registered wrongly, so New fails instead of
	// a panic escaping it.
	routeErr error
	// caches holds the subnet pages' caches (subnet half, history.go).
	caches *subnetCaches
}

// New builds an explorer; it starts nothing (Handler serves on demand).
func New(cfg Config) (*Explorer, error) {
	if cfg.Chain == nil {
		return nil, errors.New("explorer needs a chain client")
	}
	e := &Explorer{cfg: cfg, log: cfg.Log, mux: http.NewServeMux()}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if err := e.parseTemplates(); err != nil {
		return nil, err
	}
	static, err := fs.Sub(webFS, "web/static")
	if err != nil {
		return nil, err
	}
	files := http.FileServerFS(static)
	e.mux.Handle("GET /static/", http.StripPrefix("/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// FileServer answers 500 for a name io/fs refuses (bad UTF-8,
		// "..", empty elements): for a visitor that is simply not a file.
		if name := r.URL.Path; name != "" && !fs.ValidPath(name) {
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})))
	e.routes()
	if e.routeErr != nil {
		return nil, e.routeErr
	}
	return e, nil
}

// Handler is the explorer's HTTP handler.
func (e *Explorer) Handler() http.Handler { return e.mux }

// ErrNotFound makes a loader's page answer 404.
var ErrNotFound = errors.New("not found")

// badRequest is a loader error caused by the request (a malformed height,
// address or hash): the page answers 400 with its message.
type badRequest struct{ msg string }

func (b *badRequest) Error() string { return b.msg }

// BadRequestf makes a loader's page answer 400 with a message for the user.
func BadRequestf(format string, args ...any) error {
	return &badRequest{msg: fmt.Sprintf(format, args...)}
}

// loader reads one page's data for a request.
type loader func(r *http.Request) (any, error)

// page registers an HTML page at pattern (e.g. "GET /blocks/{height}") that
// renders template name with the loader's data, and its JSON twin at
// /api + the same path. Both come from the same loader, so they never
// disagree.
func (e *Explorer) page(pattern, name string, load loader) {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		e.routeErr = errors.Join(e.routeErr, fmt.Errorf("explorer: route %q has no method", pattern))
		return
	}
	if _, ok := e.pages[name]; !ok {
		e.routeErr = errors.Join(e.routeErr, fmt.Errorf("explorer: route %q has no template %q", pattern, name))
		return
	}
	e.mux.HandleFunc(method+" "+path, func(w http.ResponseWriter, r *http.Request) { e.serveHTML(w, r, name, load) })
	api := "/api" + path
	if path == "/" {
		api = "/api/status"
	}
	e.mux.HandleFunc(method+" "+api, func(w http.ResponseWriter, r *http.Request) { e.serveJSON(w, r, load) })
}

// loadTimeout bounds one page's chain reads.
const loadTimeout = 20 * time.Second

func (e *Explorer) run(r *http.Request, load loader) (any, int, error) {
	ctx, cancel := context.WithTimeout(r.Context(), loadTimeout)
	defer cancel()
	data, err := load(r.WithContext(ctx))
	var br *badRequest
	switch {
	case err == nil:
		return data, http.StatusOK, nil
	case errors.Is(err, ErrNotFound):
		return nil, http.StatusNotFound, err
	case errors.As(err, &br):
		return nil, http.StatusBadRequest, err
	default:
		e.log.Warn("explorer page failed", "path", r.URL.Path, "err", err.Error())
		return nil, http.StatusBadGateway, fmt.Errorf("the node could not be read: %w", err)
	}
}

func (e *Explorer) serveJSON(w http.ResponseWriter, r *http.Request, load loader) {
	data, code, err := e.run(r, load)
	w.Header().Set("Content-Type", "application/json")
	// Public chain data: any page (the gateway's chat among them) may read it.
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	if err != nil {
		enc.Encode(map[string]any{"error": map[string]any{"code": code, "message": err.Error()}})
		return
	}
	enc.Encode(data)
}

// view is what every template gets: the page's data and the frame's.
type view struct {
	Title   string
	Data    any
	Error   string
	Code    int
	ChatURL string
	API     string // this page's JSON twin
}

func (e *Explorer) serveHTML(w http.ResponseWriter, r *http.Request, name string, load loader) {
	data, code, err := e.run(r, load)
	v := view{Data: data, Code: code, ChatURL: e.cfg.ChatURL, API: apiPath(r.URL.Path)}
	tmpl := e.pages[name]
	if err != nil {
		v.Error, tmpl = err.Error(), e.pages["error"]
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	w.WriteHeader(code)
	if err := tmpl.ExecuteTemplate(w, "layout", v); err != nil {
		e.log.Warn("explorer template failed", "page", name, "err", err.Error())
	}
}

func apiPath(p string) string {
	if p == "/" {
		return "/api/status"
	}
	return "/api" + p
}

// parseTemplates parses web/layout.html with each web/pages/*.html; a page
// defines "title" and "content".
func (e *Explorer) parseTemplates() error {
	layout, err := template.New("layout.html").Funcs(funcs).ParseFS(webFS, "web/layout.html")
	if err != nil {
		return fmt.Errorf("explorer layout: %w", err)
	}
	names, err := fs.Glob(webFS, "web/pages/*.html")
	if err != nil {
		return err
	}
	e.pages = map[string]*template.Template{}
	for _, n := range names {
		t, err := template.Must(layout.Clone()).ParseFS(webFS, n)
		if err != nil {
			return fmt.Errorf("explorer page %s: %w", n, err)
		}
		e.pages[strings.TrimSuffix(n[len("web/pages/"):], ".html")] = t
	}
	return nil
}
