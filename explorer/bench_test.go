package explorer_test

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	cmtbytes "github.com/cometbft/cometbft/libs/bytes"
	rpctypes "github.com/cometbft/cometbft/rpc/jsonrpc/types"
	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain"
	"github.com/agoranet/agora/chain/subnet"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/explorer"
	"github.com/agoranet/agora/internal/poll"
	"github.com/agoranet/agora/internal/testkit"
)

// The chain caps a subnet at subnet.MaxUIDsLimit (1024) UIDs, so a real
// 4096-UID metagraph cannot be registered. The benchmarks serve the
// explorer from a stand-in node that answers the SDK's JSON-RPC queries
// (abci_query for the metagraph, subnets, subnet records and weight rows;
// status) with a metagraph built in memory, encoded exactly as a node
// encodes it, so everything from the RPC decode to the rendered page is
// measured.

const (
	benchUIDs       = 4096
	benchValidators = 64
	benchTempo      = 360
	benchHeight     = 100_000
)

// benchEpochs are the epoch heights the stand-in node has run, newest last.
func benchEpochs() []uint64 {
	var hs []uint64
	for h := uint64(benchHeight - 200); len(hs) < 20; h -= benchTempo + 1 {
		hs = append([]uint64{h}, hs...)
	}
	return hs
}

func benchMetagraph(n int, lastEpoch uint64) *tx.Metagraph {
	p := subnet.DefaultSubnetParams()
	p.Tempo, p.MaxUids, p.MaxValidators = benchTempo, uint32(n), benchValidators
	p.ModelId, p.PricePer_1K = "ab"+fmt.Sprintf("%062d", 0), agr.Unit/1000
	_, owner := testkit.Key(1)
	mg := &tx.Metagraph{Subnet: &tx.Subnet{Netuid: 1, Owner: owner[:], Name: "bench", Params: p, Started: true, N: uint32(n),
		RegisteredAt: 1, LastEpoch: lastEpoch, Burn: agr.Unit, BurnUpdatedAt: 1, Locked: 100 * agr.Unit, LastEpochEmission: 360 * agr.Unit}}
	for uid := range n {
		hot := make([]byte, 20)
		binary.BigEndian.PutUint32(hot, uint32(uid)+1)
		nr := &tx.Neuron{Hotkey: hot, Coldkey: owner[:], RegisteredAt: 2, LastUpdate: lastEpoch - 10, Active: true,
			Endpoint: fmt.Sprintf("https://miner-%d.example.net:8443/v1", uid), X25519PubKey: make([]byte, 32), ModelId: p.ModelId,
			Incentive: uint64(uid%97+1) << 20, Consensus: uint64(uid%89+1) << 20, Emission: uint64(uid%101+1) * 1_000_000}
		if uid < benchValidators {
			nr.ValidatorPermit, nr.ValidatorTrust, nr.Dividends, nr.Incentive = true, 1<<31, 1<<26, 0
		}
		mg.Neurons = append(mg.Neurons, nr)
		stake := uint64(0)
		if uid < benchValidators {
			stake = uint64(benchValidators-uid) * 1000 * agr.Unit
		}
		mg.Stake = append(mg.Stake, stake)
	}
	return mg
}

// benchNode is the stand-in node. Answers are encoded once and replayed,
// so the node's own cost stays out of the figures as far as it can.
type benchNode struct {
	mu      sync.Mutex
	answers map[string][]byte // "path|key|height" → raw value
	n       int
	epochs  []uint64
}

func (b *benchNode) value(path string, data []byte, height int64) ([]byte, int64, uint32) {
	if height == 0 {
		height = benchHeight
	}
	key := fmt.Sprintf("%s|%x|%d", path, data, height)
	b.mu.Lock()
	defer b.mu.Unlock()
	if v, ok := b.answers[key]; ok {
		return v, height, 0
	}
	// The last epoch at or before height.
	last := uint64(1)
	for _, e := range b.epochs {
		if e <= uint64(height) {
			last = e
		}
	}
	var m proto.Message
	switch {
	case path == tx.QueryMetagraph+"1":
		m = benchMetagraph(b.n, last)
	case path == tx.QuerySubnets:
		m = &tx.SubnetList{Subnets: []*tx.Subnet{benchMetagraph(0, last).Subnet}}
	case path == tx.QueryStore && string(data) == string(tx.SubnetKey(1)):
		s := benchMetagraph(0, last).Subnet
		s.N = uint32(b.n)
		m = s
	case path == tx.QueryStore && len(data) == 7 && data[0] == 0x15:
		// A validator's weights: every UID, by a fixed pattern.
		row := &tx.WeightRow{}
		if binary.BigEndian.Uint16(data[5:]) < benchValidators {
			for uid := range b.n {
				row.Uids, row.Values = append(row.Uids, uint32(uid)), append(row.Values, uint32(uid%1000+1))
			}
		}
		m = row
	default:
		return nil, height, tx.CodeNotFound
	}
	v, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	b.answers[key] = v
	return v, height, 0
}

func (b *benchNode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req rpctypes.RPCRequest
	body, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(body, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var res any
	switch req.Method {
	case "status":
		var s struct {
			NodeInfo struct {
				Network string `json:"network"`
			} `json:"node_info"`
			SyncInfo struct {
				LatestBlockHeight int64 `json:"latest_block_height"`
			} `json:"sync_info"`
		}
		s.NodeInfo.Network, s.SyncInfo.LatestBlockHeight = "agora-bench", benchHeight
		res = s
	case "abci_query":
		var p struct {
			Path   string            `json:"path"`
			Data   cmtbytes.HexBytes `json:"data"`
			Height string            `json:"height"`
		}
		if err := json.Unmarshal(req.Params, &p); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h, _ := strconv.ParseInt(p.Height, 10, 64)
		v, height, code := b.value(p.Path, p.Data, h)
		res = struct {
			Response abci.ResponseQuery `json:"response"`
		}{abci.ResponseQuery{Code: code, Value: v, Height: height}}
	default:
		http.Error(w, "unsupported "+req.Method, http.StatusNotImplemented)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(rpctypes.NewRPCSuccessResponse(req.ID, res))
}

func benchExplorer(b testing.TB, uids int) string {
	b.Helper()
	node := httptest.NewServer(&benchNode{answers: map[string][]byte{}, n: uids, epochs: benchEpochs()})
	b.Cleanup(node.Close)
	c, err := client.New(node.URL)
	if err != nil {
		b.Fatal(err)
	}
	e, err := explorer.New(explorer.Config{Chain: c})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(e.Handler())
	b.Cleanup(srv.Close)
	return srv.URL
}

func benchGet(b *testing.B, url string) int {
	resp, err := http.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return int(n)
}

// BenchmarkSubnetPages renders the subnet-half pages of a 4096-UID subnet
// with 64 validators and 16 epochs of history. The first request of each
// fills the history cache (past epochs never change); the figures are
// dominated by the warm path a visitor sees.
func BenchmarkSubnetPages(b *testing.B) {
	url := benchExplorer(b, benchUIDs)
	for _, p := range []struct{ name, path string }{
		{"subnet-html", "/subnets/1"},
		{"subnet-json", "/api/subnets/1"},
		{"subnet-html-by-emission-page-16", "/subnets/1?sort=emission&page=16"},
		{"neuron-html-miner", "/subnets/1/neurons/2000"},
		{"neuron-json-miner", "/api/subnets/1/neurons/2000"},
		{"neuron-html-validator", "/subnets/1/neurons/3"},
		{"subnets-html", "/subnets"},
		{"subnets-json", "/api/subnets"},
		{"keys-json", "/api/subnets/1/keys"},
	} {
		b.Run(p.name, func(b *testing.B) {
			size := benchGet(b, url+p.path) // warm: the history is cached
			for b.Loop() {
				size = benchGet(b, url+p.path)
			}
			b.ReportMetric(float64(size), "bytes/page")
		})
	}
}

// BenchmarkSubnetPagesCold is the first visit after the explorer starts:
// sixteen past metagraphs (and, for a miner, 16 validators × 16 epochs of
// weight rows) read from the node. Later visits hit the cache.
func BenchmarkSubnetPagesCold(b *testing.B) {
	node := httptest.NewServer(&benchNode{answers: map[string][]byte{}, n: benchUIDs, epochs: benchEpochs()})
	b.Cleanup(node.Close)
	c, err := client.New(node.URL)
	if err != nil {
		b.Fatal(err)
	}
	for _, path := range []string{"/subnets/1", "/subnets/1/neurons/2000"} {
		b.Run(path, func(b *testing.B) {
			var size int
			for b.Loop() {
				b.StopTimer()
				e, err := explorer.New(explorer.Config{Chain: c})
				if err != nil {
					b.Fatal(err)
				}
				srv := httptest.NewServer(e.Handler())
				b.StartTimer()
				size = benchGet(b, srv.URL+path)
				b.StopTimer()
				srv.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(size), "bytes/page")
		})
	}
}

// BenchmarkSubnetPagesChain is the same pages on a real node at the
// chain's largest subnet (subnet.MaxUIDsLimit UIDs), registered in
// batches of Params.MaxMsgsPerTx, with a validator weighting every UID
// and two epochs run, so the values are real and non-zero.
func BenchmarkSubnetPagesChain(b *testing.B) {
	const uids = subnet.MaxUIDsLimit
	owner, ownerAddr := testkit.Key(1)
	ownerHot, _ := testkit.Key(2)
	validator, valAddr := testkit.Key(3)
	g := chain.Genesis{Params: chain.DefaultParams(200), Devnet: true,
		Accounts: []chain.GenesisAccount{{Address: ownerAddr, Balance: 1_000_000 * agr.Unit}}}
	ch := testkit.StartChain(b, testkit.NodeOptions{ChainID: snChainID, Genesis: g, BlockTime: 150 * time.Millisecond})
	ch.RegisterSubnet(b, owner, ownerHot, "bench")
	p := subnet.DefaultSubnetParams()
	p.Tempo, p.MaxUids, p.MaxValidators, p.ImmunityPeriod = 20, uids, 16, 100_000
	p.CommitReveal, p.WeightsRateLimit = false, 1
	p.MinBurn, p.MaxBurn = subnet.MinBurnFloor, subnet.MinBurnFloor // cheap, and flat
	ch.Send(b, owner, tx.SubnetSetParams(1, p), tx.Transfer(valAddr, 10*agr.Unit))
	params, err := ch.Client.Params(context.Background(), false)
	if err != nil {
		b.Fatal(err)
	}
	var batch []*tx.Msg
	batch = append(batch, tx.NeuronRegister(1, tx.ProveHotkey(validator, snChainID, 1, ownerAddr), 0))
	for i := 2; i < uids; i++ {
		seed := make([]byte, ed25519.SeedSize)
		binary.BigEndian.PutUint32(seed, uint32(1_000_000+i))
		hot := ed25519.NewKeyFromSeed(seed)
		batch = append(batch, tx.NeuronRegister(1, tx.ProveHotkey(hot, snChainID, 1, ownerAddr), 0))
		if uint64(len(batch)) == params.MaxMsgsPerTx || i == uids-1 {
			ch.Send(b, owner, batch...)
			batch = nil
		}
	}
	ch.Send(b, owner, tx.StakeAdd(valAddr, 1, 1000*agr.Unit), tx.SubnetStart(1))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := poll.Until(ctx, 100*time.Millisecond, func() bool {
		mg, err := ch.Client.Metagraph(ctx, 1, 0)
		return err == nil && len(mg.Neurons) == uids && mg.Neurons[1].ValidatorPermit
	}); err != nil {
		b.Fatal("no permit for the validator:", err)
	}
	var ws, vs []uint32
	for uid := 2; uid < uids; uid++ {
		ws, vs = append(ws, uint32(uid)), append(vs, uint32(uid%1000+1))
	}
	ch.Send(b, validator, tx.WeightsSet(1, ws, vs, 0))
	var paid int
	if err := poll.Until(ctx, 100*time.Millisecond, func() bool {
		mg, err := ch.Client.Metagraph(ctx, 1, 0)
		paid = 0
		for _, n := range mg.GetNeurons() {
			if n.Incentive > 0 {
				paid++
			}
		}
		return err == nil && paid > uids/2
	}); err != nil {
		b.Fatalf("%d of %d UIDs have incentive: %v", paid, uids, err)
	}
	e, err := explorer.New(explorer.Config{Chain: ch.Client})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(e.Handler())
	b.Cleanup(srv.Close)
	for _, pg := range []struct{ name, path string }{
		{"subnet-html", "/subnets/1"},
		{"subnet-json", "/api/subnets/1"},
		{"neuron-html-miner", "/subnets/1/neurons/500"},
		{"neuron-html-validator", "/subnets/1/neurons/1"},
	} {
		b.Run(pg.name, func(b *testing.B) {
			size := benchGet(b, srv.URL+pg.path)
			for b.Loop() {
				size = benchGet(b, srv.URL+pg.path)
			}
			b.ReportMetric(float64(size), "bytes/page")
		})
	}
}
