package node

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	cmtcfg "github.com/cometbft/cometbft/config"
	cmtlog "github.com/cometbft/cometbft/libs/log"
	nm "github.com/cometbft/cometbft/node"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	"github.com/cometbft/cometbft/proxy"

	"github.com/agoranet/agora/chain"
	"github.com/agoranet/agora/chain/snapshot"
	"github.com/agoranet/agora/chain/state"
	"github.com/agoranet/agora/internal/poll"
)

// Node is a running chain node.
type Node struct {
	stopping *atomic.Bool
	cmt      *nm.Node
	store    *state.Store
	snaps    *snapshot.Store
	cfg      *cmtcfg.Config
	log      *slog.Logger
	rpc      *rpcServer // set when the RPC listener was handed over
	metrics  *metricsServer
	// releaseMetrics gives the process's CometBFT metrics back (metrics.go).
	releaseMetrics func()
}

// StartOptions tune Start.
type StartOptions struct {
	Logger *slog.Logger
	// Config overrides the home's config.toml (tests, devnet).
	Config *cmtcfg.Config
	// RPCListener, when set, serves the node's RPC on this already bound
	// listener instead of the configured address; the node closes it.
	RPCListener net.Listener
	// Snapshots override the home's app.toml snapshot settings.
	Snapshots *SnapshotSettings
	// MetricsAddr, when set (host:port), serves Prometheus metrics on
	// http://MetricsAddr/metrics: CometBFT's own and the application's.
	// MetricsListener, when set, serves them on this already bound
	// listener instead; the node closes it. With neither, metrics are off.
	// CometBFT's metrics are process-wide: one node per process at a time
	// may have metrics on.
	MetricsAddr     string
	MetricsListener net.Listener
}

// Start opens home's state and starts CometBFT with the Agora application.
// The node runs until Stop.
func Start(home string, o StartOptions) (*Node, error) {
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg := o.Config
	if cfg == nil {
		var err error
		if cfg, err = LoadConfig(home); err != nil {
			return nil, err
		}
	}
	store, err := state.Open(StateDir(home), state.DefaultOptions())
	if err != nil {
		return nil, err
	}
	app, err := chain.NewApp(store, logger.With("module", "app"))
	if err != nil {
		store.Close()
		return nil, err
	}
	snaps, err := openSnapshots(home, o, logger)
	if err != nil {
		store.Close()
		return nil, err
	}
	app.SetSnapshots(snaps)
	metricsL, err := metricsListener(o)
	if err != nil {
		snaps.Close()
		store.Close()
		return nil, err
	}
	closeMetricsL := func() {
		if metricsL != nil {
			metricsL.Close()
		}
	}
	metricsProvider := nm.DefaultMetricsProvider(cfg.Instrumentation)
	releaseMetrics := func() {}
	var appM *appMetrics
	if metricsL != nil {
		if metricsProvider, releaseMetrics, err = acquireCometMetrics(cfg.Instrumentation); err != nil {
			snaps.Close()
			store.Close()
			closeMetricsL()
			return nil, err
		}
		appM = newAppMetrics()
		app.SetObserver(appM)
		// CometBFT collects its metrics but serves none itself: the
		// node's one endpoint serves them with the application's.
		c := *cfg
		ic := *cfg.Instrumentation
		ic.Prometheus, ic.PrometheusListenAddr = true, ""
		c.Instrumentation = &ic
		cfg = &c
	} else if cfg.Instrumentation.Prometheus {
		// A config.toml asking for CometBFT's metrics (and its own server)
		// still gets them, under the same one-node-per-process rule.
		if metricsProvider, releaseMetrics, err = acquireCometMetrics(cfg.Instrumentation); err != nil {
			snaps.Close()
			store.Close()
			return nil, err
		}
	}
	// From here the snapshot store closes first: its writer reads the state.
	closeStores := func() {
		snaps.Close()
		store.Close()
		closeMetricsL()
		releaseMetrics()
	}
	nodeKey, err := p2p.LoadNodeKey(cfg.NodeKeyFile())
	if err != nil {
		closeStores()
		return nil, fmt.Errorf("load node key: %w", err)
	}
	pv, err := loadPV(cfg)
	if err != nil {
		closeStores()
		return nil, err
	}
	// Agora serves the RPC itself, on a listener bound here unless the caller
	// handed one over, so that Stop can wait for requests in flight before
	// the state store closes (CometBFT's own server does not). TLS stays
	// CometBFT's job.
	if o.RPCListener == nil && cfg.RPC.ListenAddress != "" && !cfg.RPC.IsTLSEnabled() {
		proto, addr, ok := strings.Cut(cfg.RPC.ListenAddress, "://")
		if !ok {
			proto, addr = "tcp", cfg.RPC.ListenAddress
		}
		l, err := net.Listen(proto, addr)
		if err != nil {
			closeStores()
			return nil, fmt.Errorf("listen for rpc on %s: %w", cfg.RPC.ListenAddress, err)
		}
		o.RPCListener = l
	}
	if o.RPCListener != nil {
		c := *cfg
		rpc := *cfg.RPC
		rpc.ListenAddress = "" // CometBFT starts no RPC server of its own
		c.RPC = &rpc
		cfg = &c
	}
	stopping := new(atomic.Bool)
	n, err := nm.NewNode(cfg, pv, nodeKey,
		proxy.NewLocalClientCreator(app),
		nm.DefaultGenesisDocProviderFunc(cfg),
		cmtcfg.DefaultDBProvider,
		metricsProvider,
		cometLogger{l: logger.With("module", "cometbft"), stopping: stopping},
	)
	closeRPC := func() {
		if o.RPCListener != nil {
			o.RPCListener.Close()
		}
	}
	if err != nil {
		closeStores()
		closeRPC()
		return nil, fmt.Errorf("create node: %w", err)
	}
	if err := n.Start(); err != nil {
		closeStores()
		closeRPC()
		return nil, fmt.Errorf("start node: %w", err)
	}
	node := &Node{stopping: stopping, cmt: n, store: store, snaps: snaps, cfg: cfg, log: logger, releaseMetrics: releaseMetrics}
	if metricsL != nil {
		node.metrics = serveMetrics(metricsL, appM, logger.With("module", "metrics"))
	}
	if o.RPCListener != nil {
		if node.rpc, err = serveRPC(n, o.RPCListener, cometLogger{l: logger.With("module", "cometbft"), stopping: stopping}); err != nil {
			node.Stop()
			closeRPC()
			return nil, err
		}
	}
	return node, nil
}

func loadPV(cfg *cmtcfg.Config) (pv *privval.FilePV, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("load consensus key %s: %v", cfg.PrivValidatorKeyFile(), r)
		}
	}()
	return privval.LoadFilePV(cfg.PrivValidatorKeyFile(), cfg.PrivValidatorStateFile()), nil
}

// Stop shuts CometBFT down and closes the state store.
func (n *Node) Stop() error {
	var firstErr error
	n.stopping.Store(true)
	if n.rpc != nil {
		n.rpc.close()
	}
	if n.cmt.IsRunning() {
		if err := n.cmt.Stop(); err != nil {
			firstErr = fmt.Errorf("stop cometbft: %w", err)
		}
		n.cmt.Wait()
	}
	if n.metrics != nil {
		n.metrics.close()
	}
	n.releaseMetrics()
	n.snaps.Close()
	if err := n.store.Close(); err != nil && firstErr == nil {
		firstErr = err
	}
	return firstErr
}

func openSnapshots(home string, o StartOptions, logger *slog.Logger) (*snapshot.Store, error) {
	var set SnapshotSettings
	if o.Snapshots != nil {
		set = *o.Snapshots
	} else {
		c, err := LoadAppConfig(home)
		if err != nil {
			return nil, err
		}
		set = c.Snapshot
	}
	s, err := snapshot.Open(SnapshotDir(home), snapshot.Options{Interval: set.Interval, Keep: set.Keep,
		Logger: logger.With("module", "snapshot")})
	if err != nil {
		return nil, fmt.Errorf("open snapshot store: %w", err)
	}
	return s, nil
}

// P2PAddr is the node's peer address, id@host:port, as other nodes list it
// in persistent_peers. The port is the configured one: CometBFT binds its
// p2p listener itself and does not report a port chosen for :0.
func (n *Node) P2PAddr() string {
	addr := n.cfg.P2P.ExternalAddress
	if addr == "" {
		addr = n.cfg.P2P.ListenAddress
	}
	addr = strings.TrimPrefix(addr, "tcp://")
	if host, port, err := net.SplitHostPort(addr); err == nil && (host == "0.0.0.0" || host == "") {
		addr = net.JoinHostPort("127.0.0.1", port)
	}
	return string(n.cmt.NodeInfo().ID()) + "@" + addr
}

// Snapshots lists the state-sync snapshots this node serves, newest first.
func (n *Node) Snapshots() ([]snapshot.Info, error) { return n.snaps.List() }

// SnapshotBytes is the size of the chunks of the snapshot at height.
func (n *Node) SnapshotBytes(height int64) (int64, error) {
	return n.snaps.Bytes(height, snapshot.Format)
}

// EarliestHeight is the lowest block in the node's block store: 1 for a node
// that replayed the chain, above the snapshot height for one that state-synced.
func (n *Node) EarliestHeight() int64 { return n.cmt.BlockStore().Base() }

// RPCURL is the node's CometBFT RPC address as an http:// URL.
func (n *Node) RPCURL() string {
	if n.rpc != nil && n.rpc.l.Addr().Network() == "tcp" {
		return RPCURL("tcp://" + n.rpc.l.Addr().String())
	}
	return RPCURL(n.cfg.RPC.ListenAddress)
}

// RPCURL turns a CometBFT listen address (tcp://host:port) into an http URL.
func RPCURL(listen string) string {
	u, err := url.Parse(listen)
	if err != nil || u.Host == "" {
		return "http://" + strings.TrimPrefix(listen, "tcp://")
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err == nil && (host == "0.0.0.0" || host == "") {
		u.Host = net.JoinHostPort("127.0.0.1", port)
	}
	return "http://" + u.Host
}

// Height is the latest committed block height.
func (n *Node) Height() int64 { return n.cmt.BlockStore().Height() }

// WaitForHeight blocks until the node has committed height h, in the block
// store and in the app's state (CometBFT saves a block before the app
// commits it, and queries read the app), or ctx ends.
func (n *Node) WaitForHeight(ctx context.Context, h int64) error {
	return poll.Until(ctx, 50*time.Millisecond, func() bool {
		if n.Height() < h {
			return false
		}
		// Through the ABCI connection, which serializes with commits.
		info, err := n.cmt.ProxyApp().Query().Info(ctx, &abci.RequestInfo{})
		return err == nil && info.LastBlockHeight >= h
	})
}

// cometLogger routes CometBFT's logs into slog. CometBFT logs every block at
// info, which would bury Agora's own lines, so its info becomes debug; and
// it reports closed listeners as errors during a deliberate stop.
type cometLogger struct {
	l        *slog.Logger
	stopping *atomic.Bool
}

func (c cometLogger) Debug(msg string, kv ...any) { c.l.Debug(msg, kv...) }
func (c cometLogger) Info(msg string, kv ...any)  { c.l.Debug(msg, kv...) }
func (c cometLogger) Error(msg string, kv ...any) {
	if c.stopping.Load() {
		c.l.Debug(msg, kv...)
		return
	}
	c.l.Warn(msg, kv...)
}
func (c cometLogger) With(kv ...any) cmtlog.Logger {
	return cometLogger{l: c.l.With(kv...), stopping: c.stopping}
}
