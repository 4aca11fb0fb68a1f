package httpserve

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// start serves h on a loopback listener handed straight to the server.
func start(t *testing.T, h http.Handler, o Options, hook func(*Server)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return startOn(t, l, h, o, hook)
}

func startOn(t *testing.T, l net.Listener, h http.Handler, o Options, hook func(*Server)) string {
	t.Helper()
	s := New(h, o)
	if hook != nil {
		hook(s)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); s.Serve(l) }()
	t.Cleanup(func() { s.Close(); wg.Wait() })
	return l.Addr().String()
}

// readAll echoes the body's length, or 408 if it did not arrive in time.
var readAll = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusRequestTimeout)
		return
	}
	fmt.Fprintf(w, "%d", len(b))
})

// waitClosed reads conn until the server closes it, returning what it sent.
func waitClosed(t *testing.T, conn net.Conn, within time.Duration) string {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(within))
	got, err := io.ReadAll(conn)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the server kept the connection open for %s (got %q)", within, got)
	}
	return string(got)
}

// TestSlowBodyCutOff is hole 9: a client that sends its headers and then
// trickles the body a byte at a time is cut off once the body timeout
// passes, instead of holding the connection forever.
func TestSlowBodyCutOff(t *testing.T) {
	addr := start(t, readAll, Options{BodyTimeout: 300 * time.Millisecond}, nil)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	began := time.Now()
	fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // the slowloris: one byte every 50 ms until the server hangs up
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if _, err := conn.Write([]byte("a")); err != nil {
					return
				}
			}
		}
	}()
	got := waitClosed(t, conn, 10*time.Second)
	if took := time.Since(began); took > 5*time.Second {
		t.Fatalf("cut off after %s", took)
	}
	if !strings.HasPrefix(got, "HTTP/1.1 408") {
		t.Fatalf("answer %q, want a 408", got)
	}
}

// TestSlowBodyCutOffH2C: the same over h2c, where the deadline is per stream.
func TestSlowBodyCutOffH2C(t *testing.T) {
	addr := start(t, readAll, Options{BodyTimeout: 300 * time.Millisecond}, nil)
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	hc := &http.Client{Transport: &http.Transport{Protocols: &p}, Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write([]byte("a")) // one byte, then nothing more
	began := time.Now()
	resp, err := hc.Post("http://"+addr+"/", "application/json", pr)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if took := time.Since(began); resp.StatusCode != http.StatusRequestTimeout || took > 5*time.Second {
		t.Fatalf("status %d after %s, want 408 within the timeout", resp.StatusCode, took)
	}
}

// TestSlowHeadersCutOff: headers that never finish are cut off too.
func TestSlowHeadersCutOff(t *testing.T) {
	addr := start(t, readAll, Options{ReadHeaderTimeout: 200 * time.Millisecond}, nil)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\n")
	waitClosed(t, conn, 10*time.Second)
}

// TestLongStreamOutlivesBodyTimeout: the body deadline must not cut a
// response that streams for longer than it, over HTTP/1.1 and h2c.
func TestLongStreamOutlivesBodyTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	stream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusRequestTimeout)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		tick := time.NewTicker(timeout / 4)
		defer tick.Stop()
		for i := range 20 { // five times the body timeout
			select {
			case <-r.Context().Done():
				return
			case <-tick.C:
			}
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
		}
		io.WriteString(w, "data: [DONE]\n\n")
	})
	addr := start(t, stream, Options{BodyTimeout: timeout}, nil)
	for _, h2c := range []bool{false, true} {
		t.Run(fmt.Sprintf("h2c=%v", h2c), func(t *testing.T) {
			var p http.Protocols
			p.SetHTTP1(!h2c)
			p.SetUnencryptedHTTP2(h2c)
			hc := &http.Client{Transport: &http.Transport{Protocols: &p}}
			defer hc.CloseIdleConnections()
			resp, err := hc.Post("http://"+addr+"/", "application/json", strings.NewReader(`{"x":1}`))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if h2c != (resp.ProtoMajor == 2) {
				t.Fatalf("protocol %s", resp.Proto)
			}
			b, err := io.ReadAll(resp.Body)
			if err != nil || !strings.HasSuffix(string(b), "data: [DONE]\n\n") {
				t.Fatalf("stream cut: %v after %q", err, b)
			}
		})
	}
}

// TestConnectionCap is hole 9: connections beyond the cap wait for one to
// close, and the server never holds more than the cap at once.
func TestConnectionCap(t *testing.T) {
	const maxConns = 2
	entered := make(chan struct{}, 8)
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
		io.WriteString(w, "ok")
	})
	// Count under the cap's own listener: a conn is open from Accept until
	// its Close, which frees the slot only afterwards. (ConnState cannot
	// measure this: the server reports StateClosed after the slot is free,
	// so the next conn's StateNew may come first.)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	counted := &countingListener{Listener: inner}
	addr := startOn(t, counted, h, Options{MaxConns: maxConns}, nil)
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		return c
	}
	first := []net.Conn{dial(), dial()}
	for range maxConns {
		<-entered
	}
	third := dial() // the kernel accepts it; the server must not
	select {
	case <-entered:
		t.Fatal("a connection beyond the cap was served")
	case <-time.After(300 * time.Millisecond):
	}
	// One of the first two finishes and closes: the third gets its turn.
	answers := make(chan string, 2)
	for _, c := range first {
		go func() {
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			got, _ := io.ReadAll(c)
			answers <- string(got)
		}()
	}
	release <- struct{}{}
	if got := <-answers; !strings.HasSuffix(got, "ok") {
		t.Fatalf("first answer %q", got)
	}
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting connection was never served")
	}
	close(release)
	<-answers
	if got := waitClosed(t, third, 10*time.Second); !strings.HasSuffix(got, "ok") {
		t.Fatalf("third answer %q", got)
	}
	if p := counted.peak.Load(); p > maxConns {
		t.Fatalf("%d connections open at once, cap %d", p, maxConns)
	}
}

// countingListener records the most conns open at once.
type countingListener struct {
	net.Listener
	open, peak atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	n := l.open.Add(1)
	for p := l.peak.Load(); n > p && !l.peak.CompareAndSwap(p, n); p = l.peak.Load() {
	}
	return &countedConn{Conn: c, l: l}, nil
}

type countedConn struct {
	net.Conn
	l    *countingListener
	once sync.Once
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.open.Add(-1) })
	return err
}

// TestLimitListenerClose: Accept waiting for a slot returns once the
// listener closes.
func TestLimitListenerClose(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := LimitListener(inner, 1)
	go func() {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err == nil {
			defer c.Close()
			bufio.NewReader(c).ReadByte()
		}
	}()
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	done := make(chan error, 1)
	go func() { _, err := l.Accept(); done <- err }()
	l.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Accept succeeded on a closed listener")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Accept still waiting after Close")
	}
}
