// Package httpserve is the HTTP server every Agora service (miner, gateway)
// runs behind: HTTP/1.1 and h2c, bounded header and body reads, idle
// connections closed, and a cap on concurrent connections, so that slow or
// numerous clients cannot hold a server's sockets or goroutines.
//
// There is deliberately no WriteTimeout: a completion stream lasts as long
// as generation does, and a write deadline would cut it part-way. The body's
// read deadline is set per request, when the handler starts, and lifted once
// the body has been read, so it bounds only what the client sends.
package httpserve

import (
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// Options bound what a client may cost the server. Zero fields take the
// defaults below.
type Options struct {
	// ReadHeaderTimeout bounds reading a request's headers.
	ReadHeaderTimeout time.Duration
	// BodyTimeout bounds reading a request's body, from when the handler
	// starts; it does not limit the response.
	BodyTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's headers.
	MaxHeaderBytes int
	// MaxConns caps concurrent connections; further ones wait in the
	// listen backlog until one closes.
	MaxConns int
	// MaxStreamsPerConn caps concurrent HTTP/2 streams on one connection,
	// so the connection cap also bounds h2c requests.
	MaxStreamsPerConn int
}

// Defaults.
const (
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultBodyTimeout       = 30 * time.Second
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultMaxHeaderBytes    = 64 << 10
	DefaultMaxConns          = 4096
	DefaultMaxStreamsPerConn = 250
)

func (o Options) withDefaults() Options {
	o.ReadHeaderTimeout = positiveOr(o.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	o.BodyTimeout = positiveOr(o.BodyTimeout, DefaultBodyTimeout)
	o.IdleTimeout = positiveOr(o.IdleTimeout, DefaultIdleTimeout)
	o.MaxHeaderBytes = positiveOr(o.MaxHeaderBytes, DefaultMaxHeaderBytes)
	o.MaxConns = positiveOr(o.MaxConns, DefaultMaxConns)
	o.MaxStreamsPerConn = positiveOr(o.MaxStreamsPerConn, DefaultMaxStreamsPerConn)
	return o
}

// positiveOr is v, or def where v is zero or negative (unset).
func positiveOr[T int | int64 | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Server is an http.Server whose Serve caps concurrent connections.
type Server struct {
	*http.Server
	maxConns int
}

// New makes a server for h with the given bounds.
func New(h http.Handler, o Options) *Server {
	o = o.withDefaults()
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	return &Server{
		Server: &http.Server{
			Handler:           BodyDeadline(h, o.BodyTimeout),
			Protocols:         &p,
			ReadHeaderTimeout: o.ReadHeaderTimeout,
			IdleTimeout:       o.IdleTimeout,
			MaxHeaderBytes:    o.MaxHeaderBytes,
			HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: o.MaxStreamsPerConn},
		},
		maxConns: o.MaxConns,
	}
}

// Serve accepts connections on l, at most MaxConns at a time.
func (s *Server) Serve(l net.Listener) error {
	return s.Server.Serve(LimitListener(l, s.maxConns))
}

// BodyDeadline gives each request timeout to deliver its body: the
// connection's read deadline is set when the handler starts and cleared when
// the body has been read to its end (or closed), so a client trickling its
// body is cut off while a long response is not.
func BodyDeadline(h http.Handler, timeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			h.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		if err := rc.SetReadDeadline(time.Now().Add(timeout)); err != nil {
			// Not supported by this ResponseWriter (a test recorder): serve
			// without the bound rather than refuse.
			h.ServeHTTP(w, r)
			return
		}
		r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
		h.ServeHTTP(w, r)
	})
}

// deadlineBody lifts the read deadline once the body is done with.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	once sync.Once
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) {
		b.lift()
	}
	return n, err
}

func (b *deadlineBody) Close() error {
	b.lift()
	return b.ReadCloser.Close()
}

func (b *deadlineBody) lift() {
	b.once.Do(func() { _ = b.rc.SetReadDeadline(time.Time{}) })
}

// LimitListener returns a listener that has at most n accepted connections
// open at once; Accept waits for one to close before taking another.
func LimitListener(l net.Listener, n int) net.Listener {
	return &limitListener{Listener: l, slots: make(chan struct{}, n), done: make(chan struct{})}
}

type limitListener struct {
	net.Listener
	slots     chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.slots }}, nil
}

func (l *limitListener) Close() error {
	err := l.Listener.Close()
	l.closeOnce.Do(func() { close(l.done) })
	return err
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
