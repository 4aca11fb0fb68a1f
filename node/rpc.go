package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	cmtpubsub "github.com/cometbft/cometbft/libs/pubsub"
	nm "github.com/cometbft/cometbft/node"
	rpcserver "github.com/cometbft/cometbft/rpc/jsonrpc/server"

	"github.com/agoranet/agora/httpserve"
)

// rpcServer serves CometBFT's RPC routes on a listener the caller bound, so
// a test (or a devnet on port 0) knows the address before the node starts
// and nobody races for a port that was probed and released.
type rpcServer struct {
	l    net.Listener
	srv  *http.Server
	done chan struct{}
}

func serveRPC(n *nm.Node, l net.Listener, log cometLogger) (*rpcServer, error) {
	env, err := n.ConfigureRPC()
	if err != nil {
		return nil, fmt.Errorf("configure rpc: %w", err)
	}
	routes := env.GetRoutes()
	cfg := rpcserver.DefaultConfig()
	rc := n.Config().RPC
	cfg.MaxBodyBytes, cfg.MaxHeaderBytes = rc.MaxBodyBytes, rc.MaxHeaderBytes
	cfg.MaxRequestBatchSize = rc.MaxRequestBatchSize
	if cfg.WriteTimeout <= rc.TimeoutBroadcastTxCommit {
		cfg.WriteTimeout = rc.TimeoutBroadcastTxCommit + time.Second
	}
	mux := http.NewServeMux()
	rlog := log.With("module", "rpc-server")
	wm := rpcserver.NewWebsocketManager(routes,
		rpcserver.OnDisconnect(func(remote string) {
			if err := n.EventBus().UnsubscribeAll(context.Background(), remote); err != nil && !errors.Is(err, cmtpubsub.ErrSubscriptionNotFound) {
				rlog.Error("unsubscribe websocket client", "err", err)
			}
		}),
		rpcserver.ReadLimit(cfg.MaxBodyBytes),
		rpcserver.WriteChanCapacity(rc.WebSocketWriteBufferSize),
	)
	wm.SetLogger(rlog)
	mux.HandleFunc("/websocket", wm.WebsocketHandler)
	rpcserver.RegisterRPCFuncs(mux, routes, rlog)
	s := &rpcServer{l: l, done: make(chan struct{}),
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: cfg.ReadTimeout, ReadTimeout: cfg.ReadTimeout,
			WriteTimeout: cfg.WriteTimeout, MaxHeaderBytes: cfg.MaxHeaderBytes}}
	if rc.MaxOpenConnections > 0 {
		l = httpserve.LimitListener(l, rc.MaxOpenConnections)
		s.l = l
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			rlog.Error("rpc server stopped", "err", err)
		}
	}()
	return s, nil
}

// close stops accepting and waits for requests in flight, which read the
// application's state: the store must not close under them. A request that
// outlasts the grace period (a broadcast_tx_commit waiting on a block) is cut.
func (s *rpcServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if s.srv.Shutdown(ctx) != nil {
		s.srv.Close()
	}
	<-s.done
}
