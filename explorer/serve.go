package explorer

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"

	"github.com/agoranet/agora/httpserve"
)

// Server is a running explorer: the one constructor the node command, the
// devnet and the testnet all use.
type Server struct {
	url  string
	srv  *httpserve.Server
	done chan struct{}
	once sync.Once
	err  error
}

// Start serves an explorer for cfg on l until Close.
func Start(l net.Listener, cfg Config) (*Server, error) {
	e, err := New(cfg)
	if err != nil {
		return nil, err
	}
	s := &Server{url: "http://" + l.Addr().String(), srv: httpserve.New(e.Handler(), httpserve.Options{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.err = fmt.Errorf("explorer: %w", err)
		}
	}()
	return s, nil
}

// Listen is Start on a new TCP listener at addr (host:port; port 0 picks one).
func Listen(addr string, cfg Config) (*Server, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("explorer: listen on %s: %w", addr, err)
	}
	s, err := Start(l, cfg)
	if err != nil {
		l.Close()
		return nil, err
	}
	return s, nil
}

// URL is the explorer's base URL, http://host:port.
func (s *Server) URL() string { return s.url }

// Close stops serving and waits for the server to end.
func (s *Server) Close() error {
	s.once.Do(func() {
		s.srv.Close()
		<-s.done
	})
	return s.err
}
