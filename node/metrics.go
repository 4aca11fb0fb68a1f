package node

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/cometbft/cometbft/blocksync"
	cmtcfg "github.com/cometbft/cometbft/config"
	cs "github.com/cometbft/cometbft/consensus"
	mempl "github.com/cometbft/cometbft/mempool"
	nm "github.com/cometbft/cometbft/node"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/proxy"
	sm "github.com/cometbft/cometbft/state"
	"github.com/cometbft/cometbft/statesync"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/agoranet/agora/chain/tx"
)

// appMetrics are the chain application's metrics, in a registry of the
// node's own. It implements chain.Observer.
type appMetrics struct {
	reg    *prometheus.Registry
	txs    *prometheus.CounterVec
	block  prometheus.Histogram
	height prometheus.Gauge
	endBlk *prometheus.HistogramVec
	supply *prometheus.GaugeVec
}

func newAppMetrics() *appMetrics {
	m := &appMetrics{
		reg: prometheus.NewRegistry(),
		txs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "agora", Subsystem: "chain", Name: "txs_total",
			Help: "Transactions executed in finalized blocks, by first message type and result code.",
		}, []string{"msg", "code"}),
		block: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "agora", Subsystem: "chain", Name: "block_seconds",
			Help:    "Wall time of a block's FinalizeBlock plus Commit.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		endBlk: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "agora", Subsystem: "chain", Name: "end_block_seconds",
			Help:    "Wall time of a block's end-of-block work (emission, subnet epochs, chain validators), by whether a subnet epoch ran.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"epoch"}),
		height: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "agora", Subsystem: "chain", Name: "height",
			Help: "Height of the last committed block.",
		}),
		supply: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "agora", Subsystem: "chain", Name: "supply_base_units",
			Help: "The committed supply record, in base units, by kind.",
		}, []string{"kind"}),
	}
	m.reg.MustRegister(m.txs, m.block, m.height, m.endBlk, m.supply)
	return m
}

func (m *appMetrics) TxResult(msg string, code uint32) {
	m.txs.WithLabelValues(msg, tx.CodeName(code)).Inc()
}

func (m *appMetrics) Block(height uint64, took time.Duration) {
	m.block.Observe(took.Seconds())
	m.height.Set(float64(height))
}

func (m *appMetrics) EndBlock(took time.Duration, epoch bool) {
	m.endBlk.WithLabelValues(strconv.FormatBool(epoch)).Observe(took.Seconds())
}

func (m *appMetrics) Supply(s *tx.Supply) {
	for _, k := range []struct {
		kind string
		v    uint64
	}{
		{"genesis", s.Genesis}, {"minted", s.Minted}, {"burned", s.Burned},
		{"pending_emission", s.PendingEmission}, {"last_block_emission", s.LastBlockEmission},
		{"staked", s.Staked}, {"locked", s.Locked}, {"subnet_pending", s.SubnetPending},
		{"escrowed", s.Escrowed}, {"revenue_pending", s.RevenuePending},
		{"bonded", s.Bonded}, {"unbonding", s.Unbonding}, {"slashed", s.Slashed},
		{"royalty_held", s.RoyaltyHeld}, {"offering_escrow", s.OfferingEscrow},
	} {
		m.supply.WithLabelValues(k.kind).Set(float64(k.v))
	}
}

// CometBFT's metrics register through go-kit into Prometheus's default
// registry, which exists once per process and refuses a second registration
// of the same names. So one node per process at a time may run with metrics
// on; the metrics of a chain are created once and reused by a node of the
// same chain started again later (a restart in one process).
var cometMetrics struct {
	mu      sync.Mutex
	active  bool
	byChain map[string]*cometMetricSet
}

type cometMetricSet struct {
	cs *cs.Metrics
	p2 *p2p.Metrics
	mp *mempl.Metrics
	sm *sm.Metrics
	px *proxy.Metrics
	bs *blocksync.Metrics
	ss *statesync.Metrics
}

var errMetricsInUse = errors.New("metrics are already on for another node in this process (CometBFT's metrics are process-wide)")

// acquireCometMetrics reserves the process's CometBFT metrics for one node
// and returns its metrics provider; release gives them back.
func acquireCometMetrics(ic *cmtcfg.InstrumentationConfig) (nm.MetricsProvider, func(), error) {
	cometMetrics.mu.Lock()
	defer cometMetrics.mu.Unlock()
	if cometMetrics.active {
		return nil, nil, errMetricsInUse
	}
	cometMetrics.active = true
	ns := ic.Namespace
	provider := func(chainID string) (*cs.Metrics, *p2p.Metrics, *mempl.Metrics, *sm.Metrics, *proxy.Metrics, *blocksync.Metrics, *statesync.Metrics) {
		cometMetrics.mu.Lock()
		defer cometMetrics.mu.Unlock()
		if cometMetrics.byChain == nil {
			cometMetrics.byChain = make(map[string]*cometMetricSet)
		}
		key := ns + "\x00" + chainID
		s := cometMetrics.byChain[key]
		if s == nil {
			s = &cometMetricSet{
				cs.PrometheusMetrics(ns, "chain_id", chainID),
				p2p.PrometheusMetrics(ns, "chain_id", chainID),
				mempl.PrometheusMetrics(ns, "chain_id", chainID),
				sm.PrometheusMetrics(ns, "chain_id", chainID),
				proxy.PrometheusMetrics(ns, "chain_id", chainID),
				blocksync.PrometheusMetrics(ns, "chain_id", chainID),
				statesync.PrometheusMetrics(ns, "chain_id", chainID),
			}
			cometMetrics.byChain[key] = s
		}
		return s.cs, s.p2, s.mp, s.sm, s.px, s.bs, s.ss
	}
	var once sync.Once
	release := func() {
		once.Do(func() {
			cometMetrics.mu.Lock()
			cometMetrics.active = false
			cometMetrics.mu.Unlock()
		})
	}
	return provider, release, nil
}

// metricsServer serves /metrics: CometBFT's metrics (default registry) and
// the application's (the node's registry) on one endpoint.
type metricsServer struct {
	url  string
	srv  *http.Server
	done chan struct{}
}

func serveMetrics(l net.Listener, app *appMetrics, log *slog.Logger) *metricsServer {
	g := prometheus.Gatherers{prometheus.DefaultGatherer, app.reg}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{MaxRequestsInFlight: 8, Timeout: 10 * time.Second}))
	s := &metricsServer{url: "http://" + l.Addr().String() + "/metrics", done: make(chan struct{}),
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 15 * time.Second}}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	return s
}

// MetricsURL is where the node serves Prometheus metrics ("" when off).
func (n *Node) MetricsURL() string {
	if n.metrics == nil {
		return ""
	}
	return n.metrics.url
}

func (s *metricsServer) close() {
	s.srv.Close()
	<-s.done
}

// metricsListener binds o's metrics address unless a listener was handed over.
func metricsListener(o StartOptions) (net.Listener, error) {
	if o.MetricsListener != nil || o.MetricsAddr == "" {
		return o.MetricsListener, nil
	}
	l, err := net.Listen("tcp", o.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("listen for metrics on %s: %w", o.MetricsAddr, err)
	}
	return l, nil
}
