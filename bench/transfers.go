package bench

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/node"
	"github.com/agoranet/agora/testnet"
)

// TransfersConfig sizes a transfer benchmark.
type TransfersConfig struct {
	Accounts   int           // funded sender accounts
	PerAccount int           // transfers each account sends
	Conns      int           // concurrent RPC connections
	BlockTime  time.Duration // block time of the benchmark chain
	Progress   io.Writer     // progress lines; nil discards them
	// Validators above 1 runs the benchmark on a testnet of that many chain
	// validators, each an Exe node process, sending through all their RPCs.
	Validators int
	Exe        string // the agora binary (needed when Validators > 1)
}

// TransfersResult is what a transfer benchmark measured.
type TransfersResult struct {
	Accounts     int     `json:"accounts"`
	Sent         int     `json:"sent"`
	Committed    int     `json:"committed"`
	Rejected     int     `json:"rejected"`
	Seconds      float64 `json:"seconds"`
	TxPerSecond  float64 `json:"committed_tx_per_second"`
	P50Millis    float64 `json:"commit_latency_p50_ms"`
	P99Millis    float64 `json:"commit_latency_p99_ms"`
	Blocks       int     `json:"blocks"`
	MaxBlockTxs  int     `json:"max_block_txs"`
	BlockTimeMs  int64   `json:"block_time_ms"`
	Connections  int     `json:"connections"`
	FirstRejects string  `json:"first_rejection,omitempty"`
	Validators   int     `json:"chain_validators"`
}

const transfersChainID = "agora-bench"

func transferKey(i int) ed25519.PrivateKey {
	seed := sha256.Sum256(binary.BigEndian.AppendUint64([]byte("agora-bench"), uint64(i)))
	return ed25519.NewKeyFromSeed(seed[:])
}

// Transfers starts a single-node chain in a temporary directory with
// cfg.Accounts funded accounts, pre-signs cfg.PerAccount transfers for each,
// sends them with broadcast_tx_sync over cfg.Conns connections and watches
// blocks to measure committed transfers per second and send-to-commit
// latency. The chain and its directory are gone when it returns.
func Transfers(ctx context.Context, cfg TransfersConfig) (*TransfersResult, error) {
	if cfg.Accounts < 1 || cfg.PerAccount < 1 || cfg.Conns < 1 {
		return nil, errors.New("bench: accounts, transfers per account and connections must be positive")
	}
	progress := cfg.Progress
	if progress == nil {
		progress = io.Discard
	}
	accounts, perAccount, conns := cfg.Accounts, cfg.PerAccount, cfg.Conns
	keysList := make([]ed25519.PrivateKey, accounts)
	g := chain.Genesis{Params: chain.DefaultParams(uint64(cfg.BlockTime / time.Millisecond)), Devnet: true}
	for i := range keysList {
		keysList[i] = transferKey(i)
		g.Accounts = append(g.Accounts, chain.GenesisAccount{Address: address.FromPubKey(keysList[i].Public().(ed25519.PublicKey)), Balance: 1000 * agr.Unit})
	}
	var chainClients []*client.Client
	var chainHeight func() int64
	chainID := transfersChainID
	if cfg.Validators > 1 {
		net, stop, err := startTestnet(ctx, cfg, g.Accounts, progress)
		if err != nil {
			return nil, err
		}
		defer stop()
		chainID = net.Manifest.ChainID
		for i := range net.Manifest.Nodes {
			c, err := net.Client(i)
			if err != nil {
				return nil, err
			}
			chainClients = append(chainClients, c)
		}
		chainHeight = func() int64 {
			h, _ := chainClients[0].Height(ctx)
			return h
		}
	} else {
		home, err := os.MkdirTemp("", "agora-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(home)
		rpcPort, p2pPort, err := freeLoopbackPorts()
		if err != nil {
			return nil, err
		}
		err = node.Init(home, node.InitOptions{
			ChainID: transfersChainID, Moniker: "bench", Genesis: g, BlockTime: cfg.BlockTime,
			RPCAddr: fmt.Sprintf("tcp://127.0.0.1:%d", rpcPort), P2PAddr: fmt.Sprintf("tcp://127.0.0.1:%d", p2pPort),
			MempoolSize: accounts*perAccount + 1000,
		})
		if err != nil {
			return nil, err
		}
		n, err := node.Start(home, node.StartOptions{})
		if err != nil {
			return nil, err
		}
		defer n.Stop()
		if err := n.WaitForHeight(ctx, 1); err != nil {
			return nil, err
		}
		c, err := client.New(n.RPCURL())
		if err != nil {
			return nil, err
		}
		chainClients = []*client.Client{c}
		chainHeight = n.Height
	}
	c := chainClients[0]

	// Pre-sign everything so the measurement is the chain, not the signer.
	fmt.Fprintf(progress, "signing %d transfers from %d accounts…\n", accounts*perAccount, accounts)
	fee := g.Params.FeeTransfer
	sink := address.FromPubKey(transferKey(-1).Public().(ed25519.PublicKey))
	signed := make([][][]byte, accounts) // [account][nonce]
	for i, k := range keysList {
		signed[i] = make([][]byte, perAccount)
		for nonce := range perAccount {
			raw, err := tx.Sign(k, &tx.TxBody{ChainId: chainID, Nonce: uint64(nonce), Fee: fee, Msgs: []*tx.Msg{tx.Transfer(sink, 1)}})
			if err != nil {
				return nil, err
			}
			signed[i][nonce] = raw
		}
	}
	total := accounts * perAccount
	sentAt := make(map[[32]byte]time.Time, total)
	var sentMu sync.Mutex
	var rejected atomic.Int64
	var firstReject atomic.Value

	startHeight := chainHeight()
	start := time.Now()
	var wg sync.WaitGroup
	sendCtx, cancelSend := context.WithCancel(ctx)
	defer cancelSend()
	for w := range conns {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			// Each worker owns accounts w, w+conns, …, and sends them in nonce
			// order so every account's transactions arrive in sequence.
			for nonce := range perAccount {
				for i := w; i < accounts; i += conns {
					raw := signed[i][nonce]
					h := sha256.Sum256(raw)
					sentMu.Lock()
					sentAt[h] = time.Now()
					sentMu.Unlock()
					// Spread over every node's RPC, as clients of a real
					// network would be; one account stays on one node so
					// its nonces reach a mempool in order.
					if err := sendWithRetry(sendCtx, chainClients[i%len(chainClients)], raw); err != nil {
						if sendCtx.Err() != nil {
							return
						}
						rejected.Add(1)
						firstReject.CompareAndSwap(nil, err.Error())
					}
				}
			}
		}(w)
	}

	latencies := make([]time.Duration, 0, total)
	var lastCommit time.Time
	blocks, maxBlock := 0, 0
	height := startHeight
	deadline := time.Now().Add(time.Duration(total/200+120) * time.Second)
	for len(latencies)+int(rejected.Load()) < total && time.Now().Before(deadline) {
		h := chainHeight()
		if h <= height {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
			continue
		}
		now := time.Now()
		for height < h {
			height++
			b, err := c.Block(ctx, height)
			if err != nil {
				return nil, err
			}
			ours := 0
			sentMu.Lock()
			for _, t := range b.Block.Txs {
				if at, ok := sentAt[sha256.Sum256(t)]; ok {
					latencies = append(latencies, now.Sub(at))
					ours++
				}
			}
			sentMu.Unlock()
			if ours > 0 {
				blocks++
				maxBlock = max(maxBlock, ours)
				lastCommit = now
			}
		}
		fmt.Fprintf(progress, "\rheight %d  committed %d/%d", height, len(latencies), total)
	}
	fmt.Fprintln(progress)
	cancelSend()
	wg.Wait()
	if len(latencies) == 0 {
		return nil, errors.New("no transfer was committed")
	}
	slices.Sort(latencies)
	elapsed := lastCommit.Sub(start).Seconds()
	res := &TransfersResult{
		Accounts: accounts, Sent: total - int(rejected.Load()), Committed: len(latencies), Rejected: int(rejected.Load()),
		Seconds: elapsed, TxPerSecond: float64(len(latencies)) / elapsed,
		P50Millis: percentileMillis(latencies, 0.50), P99Millis: percentileMillis(latencies, 0.99), Blocks: blocks, MaxBlockTxs: maxBlock,
		BlockTimeMs: cfg.BlockTime.Milliseconds(), Connections: conns, Validators: max(1, cfg.Validators),
	}
	if v, ok := firstReject.Load().(string); ok {
		res.FirstRejects = v
	}
	return res, nil
}

// percentileMillis reads the p-th percentile of sorted, non-empty latencies
// in milliseconds.
func percentileMillis(sorted []time.Duration, p float64) float64 {
	return float64(sorted[int(p*float64(len(sorted)-1))].Microseconds()) / 1000
}

// sendWithRetry retries while the mempool is full; the chain's own refusals are final.
func sendWithRetry(ctx context.Context, c *client.Client, raw []byte) error {
	for attempt := 0; ; attempt++ {
		_, err := c.Broadcast(ctx, raw)
		var txErr *client.TxError
		if err == nil || errors.As(err, &txErr) || attempt > 50 {
			return err
		}
		if !strings.Contains(err.Error(), "mempool is full") {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func freeLoopbackPorts() (int, int, error) {
	var ports [2]int
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, 0, fmt.Errorf("find a free port: %w", err)
		}
		defer l.Close()
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports[0], ports[1], nil
}

// startTestnet builds and starts a cfg.Validators-node testnet in a
// temporary directory with accounts funded; stop kills it and removes the
// directory.
func startTestnet(ctx context.Context, cfg TransfersConfig, accounts []chain.GenesisAccount, progress io.Writer) (*testnet.Network, func(), error) {
	if cfg.Exe == "" {
		return nil, nil, errors.New("bench: a multi-validator run needs the agora binary")
	}
	dir, err := os.MkdirTemp("", "agora-bench-testnet-")
	if err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(progress, "starting %d chain validator processes…\n", cfg.Validators)
	if _, err := testnet.Build(dir, testnet.Options{ChainID: transfersChainID, Validators: cfg.Validators, BlockTime: cfg.BlockTime, Accounts: accounts}); err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	net, err := testnet.Open(dir, cfg.Exe)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	stop := func() {
		net.Stop()
		os.RemoveAll(dir)
	}
	if err := net.StartAll(); err != nil {
		stop()
		return nil, nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := net.WaitHeight(wctx, 1); err != nil {
		stop()
		return nil, nil, err
	}
	return net, stop, nil
}
