// Package devnet brings a whole Agora network up on one machine: Prepare
// writes a single-validator chain's home with a funded faucet, and Start
// takes that chain, running, and adds subnet 1 pinned to a model registered
// with a royalty (shared with a second holder and a cited dataset), miners on
// the built-in engine, a validator that scores them, its paid gateway, and
// (optionally) a cheating miner, all on loopback.
//
// It wires services with the constructors their packages own
// (miner.Enrollment, validator.New, gateway.NewService), the same ones the
// agora command uses, so the devnet behaves as separate processes would.
// Only the agora command imports it.
package devnet

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agent"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain/subnet"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/dataset"
	"github.com/agoranet/agora/engine"
	"github.com/agoranet/agora/gateway"
	"github.com/agoranet/agora/keys"
	"github.com/agoranet/agora/miner"
	"github.com/agoranet/agora/validator"
)

// Netuid is the devnet's subnet.
const Netuid = 1

// Options describe the network to build.
type Options struct {
	Chain    *client.Client
	Faucet   ed25519.PrivateKey // funds everything and owns the subnet
	Keystore *keys.Keystore     // hotkeys are stored here, with Password
	Password []byte
	Model    *engine.Model // the pinned model
	Cheat    *engine.Model // nil: no cheater; else a miner serves this one while claiming the pinned id
	Miners   int
	Tempo    uint64
	Interval time.Duration // validator round interval
	// GatewayAddr is where the validator\'s OpenAI-compatible gateway listens.
	GatewayAddr string
	// LedgerPath is where the gateway records accepted vouchers.
	LedgerPath string
	// GatewayLimits bound each payer at the gateway (nil: gateway.DefaultLimits).
	GatewayLimits *gateway.Limits
	// ClaimInterval is how often the gateway claims what it charged (0: 10 s).
	ClaimInterval time.Duration
	// CommitPath is where the validator keeps its pending weight commit
	// across restarts (empty: in memory only).
	CommitPath string
	// ExplorerURL is the explorer the gateway's chat page names as the
	// source of miners' keys (GET /v1/agora/info); empty names none.
	ExplorerURL string
	Logger      *slog.Logger
}

// Participant is one process-in-a-goroutine of the network.
type Participant struct {
	Role     string
	Name     string
	Hotkey   address.Address
	Endpoint string
}

// Network is a running devnet network.
type Network struct {
	Participants []Participant
	Validator    *validator.Validator
	ModelID      string
	GatewayURL   string // OpenAI-compatible base URL, ending in /v1
	SessionToken string // a funded API key for OpenAI clients (agora-sk-…)
	// Gateway is the validator's paid gateway: its ledger and claims.
	Gateway *gateway.Service
	// ModelShareholders hold the pinned model's shares: its owner, the
	// faucet (ModelShares − ModelTransferShares), then the "shareholder"
	// key (ModelTransferShares).
	ModelShareholders []address.Address
	// DatasetRoot is the dataset the model cites, and Contributors its two
	// contributors ("contributor1", "contributor2"), credited by proofs.
	DatasetRoot  []byte
	Contributors []address.Address
	servers      []*http.Server
	cancel       context.CancelFunc
	wg           sync.WaitGroup
	log          *slog.Logger
}

// DevnetSubnetParams are short-tempo hyperparameters so emission reaches
// honest miners within a couple of minutes.
func DevnetSubnetParams(tempo uint64, modelID string) *tx.SubnetParams {
	p := subnet.DefaultSubnetParams()
	p.Tempo = tempo
	p.ImmunityPeriod = 4 * tempo
	p.ActivityCutoff = 50 * tempo
	p.WeightsRateLimit = 1
	p.MaxValidators = 8
	p.MinBurn, p.MaxBurn = agr.Unit/10, 10*agr.Unit
	p.ServingRateLimit = 1
	p.ModelId = modelID
	p.PricePer_1K = agr.Unit / 1000
	return p
}

func hotkey(ks *keys.Keystore, name string, pw []byte) (ed25519.PrivateKey, error) {
	if _, err := ks.Get(name); errors.Is(err, keys.ErrNotFound) {
		if _, _, err := ks.Create(name, keys.Hotkey, pw); err != nil {
			return nil, err
		}
	}
	return ks.Unlock(name, pw)
}

// The pinned model's terms on a devnet: a fifth of the subnet's revenue is
// royalty, a quarter of that goes to the dataset it cites, and a quarter of
// its shares to a second holder, so every split shows in the status output.
const (
	ModelRoyaltyBps     = 2000
	ModelDataBps        = 2500
	ModelShares         = 1_000_000
	ModelTransferShares = 250_000
)

// datasetFiles are the devnet dataset's files, one per contributor. They
// are fixed so a restarted home computes the same root from its keys.
var datasetFiles = [][]byte{
	[]byte("Agora devnet training text one: a model is shared property.\n"),
	[]byte("Agora devnet training text two: so is the data it learned from.\n"),
}

// published names the devnet's model holders and dataset.
type published struct {
	holders      []address.Address // the owner, then the shareholder
	root         []byte
	contributors []address.Address
}

// publish registers the pinned model with a royalty and a second
// shareholder, and the dataset it cites with two contributors credited by
// inclusion proofs, unless the model is already registered (a restarted
// home). It must run before the subnet pins the model: the chain refuses to
// pin an unregistered one.
func publish(ctx context.Context, o Options, send func(ed25519.PrivateKey, ...*tx.Msg) error, modelID string) (published, error) {
	addr := map[string]address.Address{}
	for _, n := range []string{"shareholder", "contributor1", "contributor2"} {
		k, err := hotkey(o.Keystore, n, o.Password)
		if err != nil {
			return published{}, fmt.Errorf("key %s: %w", n, err)
		}
		addr[n] = address.FromPubKey(k.Public().(ed25519.PublicKey))
	}
	p := published{
		holders:      []address.Address{address.FromPubKey(o.Faucet.Public().(ed25519.PublicKey)), addr["shareholder"]},
		contributors: []address.Address{addr["contributor1"], addr["contributor2"]},
	}
	leaves := make([]*tx.DataLeaf, len(datasetFiles))
	hashes := make([][32]byte, len(datasetFiles))
	var size uint64
	for i, f := range datasetFiles {
		sum := sha256.Sum256(f)
		leaves[i] = &tx.DataLeaf{FileSha256: sum[:], Size: uint64(len(f)), Contributor: p.contributors[i].Bytes(), Weight: 1}
		hashes[i] = dataset.LeafHash(leaves[i])
		size += uint64(len(f))
	}
	root, err := dataset.Root(hashes)
	if err != nil {
		return published{}, err
	}
	p.root = root[:]
	if _, err := o.Chain.Model(ctx, modelID, false); err == nil {
		return p, nil // registered on an earlier run of this home
	} else if !errors.Is(err, client.ErrNoModel) {
		return published{}, fmt.Errorf("read model %s: %w", modelID, err)
	}
	var msgs []*tx.Msg
	if _, err := o.Chain.Dataset(ctx, p.root, false); errors.Is(err, client.ErrNoDataset) {
		// No explicit contributors: each is credited by its leaf's proof
		// (anyone may submit one; the faucet does), so the devnet exercises
		// the proof path end to end.
		msgs = append(msgs, tx.DataRegister(&tx.MsgDataRegister{Root: p.root, Name: "devnet-texts", License: "cc0-1.0",
			Size: size, Files: uint64(len(leaves))}))
		for i, leaf := range leaves {
			proof, err := dataset.Prove(hashes, i)
			if err != nil {
				return published{}, err
			}
			raw := make([][]byte, len(proof))
			for j := range proof {
				raw[j] = proof[j][:]
			}
			msgs = append(msgs, tx.DataContribute(p.root, leaf, uint64(i), raw))
		}
	} else if err != nil {
		return published{}, fmt.Errorf("read dataset %x: %w", p.root, err)
	}
	msgs = append(msgs,
		tx.ModelRegister(&tx.MsgModelRegister{ModelId: modelID, Name: "devnet-chat", License: "apache-2.0",
			RoyaltyBps: ModelRoyaltyBps, Shares: ModelShares, DataBps: ModelDataBps,
			Citations: []*tx.Citation{{Dataset: p.root, Weight: 1}}}),
		tx.ModelSharesTransfer(modelID, addr["shareholder"], ModelTransferShares))
	for _, n := range []string{"shareholder", "contributor1", "contributor2"} {
		msgs = append(msgs, tx.Transfer(addr[n], agr.Unit)) // the fees of their claims
	}
	// One transaction: the model is registered with its dataset or not at all.
	if err := send(o.Faucet, msgs...); err != nil {
		return published{}, fmt.Errorf("register the devnet model and dataset: %w", err)
	}
	return p, nil
}

// Start registers the pinned model (with its royalty, a second shareholder
// and a cited dataset), the subnet and its neurons on chain (unless they
// already are) and starts miners and the validator.
func Start(ctx context.Context, o Options) (*Network, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	modelID, err := o.Model.ID()
	if err != nil {
		return nil, err
	}
	c := o.Chain
	chainID, err := c.ChainID(ctx)
	if err != nil {
		return nil, err
	}
	faucetAddr := address.FromPubKey(o.Faucet.Public().(ed25519.PublicKey))
	names := []string{"validator"}
	for i := range o.Miners {
		names = append(names, fmt.Sprintf("miner%d", i+1))
	}
	if o.Cheat != nil {
		names = append(names, "cheater")
	}
	hot := map[string]ed25519.PrivateKey{}
	for _, n := range append([]string{"owner"}, names...) {
		if hot[n], err = hotkey(o.Keystore, n, o.Password); err != nil {
			return nil, fmt.Errorf("hotkey %s: %w", n, err)
		}
	}
	addrOf := func(n string) address.Address { return address.FromPubKey(hot[n].Public().(ed25519.PublicKey)) }
	send := func(key ed25519.PrivateKey, msgs ...*tx.Msg) error {
		_, err := c.SendAndWait(ctx, key, msgs, client.SendOptions{})
		return err
	}
	shares, err := publish(ctx, o, send, modelID)
	if err != nil {
		return nil, err
	}
	if _, err := c.Metagraph(ctx, Netuid, 0); err != nil {
		// First run of this home: create the subnet and its neurons.
		err := send(o.Faucet, tx.SubnetRegister("devnet-chat", tx.ProveHotkey(hot["owner"], chainID, subnet.NewSubnetNetuid, faucetAddr), 0))
		if err != nil {
			return nil, fmt.Errorf("register subnet: %w", err)
		}
		msgs := []*tx.Msg{tx.SubnetSetParams(Netuid, DevnetSubnetParams(o.Tempo, modelID))}
		for _, n := range names {
			msgs = append(msgs,
				tx.NeuronRegister(Netuid, tx.ProveHotkey(hot[n], chainID, Netuid, faucetAddr), 0),
				tx.Transfer(addrOf(n), 10*agr.Unit)) // hotkeys pay their own fees
		}
		msgs = append(msgs,
			tx.StakeAdd(addrOf("validator"), Netuid, 1000*agr.Unit), tx.SubnetStart(Netuid))
		if err := send(o.Faucet, msgs...); err != nil {
			return nil, fmt.Errorf("set up subnet %d: %w", Netuid, err)
		}
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	n := &Network{ModelID: modelID, cancel: cancel, log: o.Logger,
		ModelShareholders: shares.holders, DatasetRoot: shares.root, Contributors: shares.contributors}
	serveErr := make(chan error, len(names))
	var serves sync.WaitGroup
	for _, name := range names[1:] {
		// The same enrollment `agora miner` does: registered and funded
		// above on a first run, so normally nothing to send here.
		enroll := miner.Enrollment{Chain: c, Netuid: Netuid, Hotkey: hot[name], Coldkey: o.Faucet}
		if _, err := enroll.Join(ctx); err != nil {
			n.Stop()
			return nil, fmt.Errorf("enroll %s: %w", name, err)
		}
		var backend miner.Backend
		b, err := miner.NewBuiltin(o.Model)
		if err != nil {
			n.Stop()
			return nil, err
		}
		backend = b
		if name == "cheater" {
			// Serves another model while its receipts claim the pinned one.
			cb, err := miner.NewBuiltin(o.Cheat)
			if err != nil {
				n.Stop()
				return nil, err
			}
			backend = lying{cb, modelID}
		}
		m, err := miner.New(miner.Config{Hotkey: hot[name], Backend: backend, PinnedModel: modelID,
			Allow: miner.ChainAllow(c, Netuid, 10*time.Second), PricePer1K: agr.Unit / 1000,
			MaxConcurrent: 2, MaxQueue: 16, Logger: o.Logger.With("miner", name)})
		if err != nil {
			n.Stop()
			return nil, err
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			n.Stop()
			return nil, err
		}
		srv := miner.NewHTTPServer(m.Handler())
		n.servers = append(n.servers, srv.Server)
		n.wg.Add(1)
		go func() { defer n.wg.Done(); srv.Serve(l) }()
		endpoint := "http://" + l.Addr().String()
		role := "miner"
		if name == "cheater" {
			role = "cheater"
		}
		n.Participants = append(n.Participants, Participant{Role: role, Name: name, Hotkey: addrOf(name), Endpoint: endpoint})
		serves.Add(1)
		go func(name, endpoint string, e2eKey []byte) {
			defer serves.Done()
			if err := enroll.Publish(ctx, endpoint, e2eKey, modelID); err != nil {
				serveErr <- fmt.Errorf("serve %s: %w", name, err)
			}
		}(name, endpoint, m.E2EPublicKey())
	}
	serves.Wait()
	close(serveErr)
	if err := <-serveErr; err != nil {
		n.Stop()
		return nil, err
	}
	if n.Validator, err = validator.New(validator.Config{Hotkey: hot["validator"], Netuid: Netuid, Model: o.Model, Chain: c,
		Seed: uint64(time.Now().UnixNano()), Timeout: 60 * time.Second, Logger: o.Logger.With("validator", "validator"),
		CommitPath: o.CommitPath}); err != nil {
		n.Stop()
		return nil, err
	}
	n.Participants = append([]Participant{{Role: "validator", Name: "validator", Hotkey: addrOf("validator")}}, n.Participants...)
	n.wg.Add(1)
	go func() { defer n.wg.Done(); n.Validator.Run(runCtx, o.Interval) }()
	// The validator's gateway: routes user traffic by the validator's
	// scores and charges through a channel the faucet opens to it, spent by
	// a session key whose token the devnet prints as an API key.
	h, err := c.Height(ctx)
	if err != nil {
		n.Stop()
		return nil, err
	}
	const deposit = 100 * agr.Unit
	gwAddr := addrOf("validator")
	res, err := c.SendAndWait(ctx, o.Faucet, []*tx.Msg{tx.ChannelOpen(gwAddr, Netuid, deposit, uint64(h)+10_000_000)}, client.SendOptions{})
	if err != nil {
		n.Stop()
		return nil, fmt.Errorf("open the devnet payment channel: %w", err)
	}
	channelID, err := agent.OpenedChannel(ctx, c, faucetAddr, res)
	if err != nil {
		n.Stop()
		return nil, err
	}
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		n.Stop()
		return nil, err
	}
	d := tx.Delegate(o.Faucet, chainID, channelID, ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey), deposit, uint64(h)+10_000_000, []uint32{Netuid})
	if n.SessionToken, err = gateway.NewSessionToken(seed, d); err != nil {
		n.Stop()
		return nil, err
	}
	claimEvery := o.ClaimInterval
	if claimEvery == 0 {
		claimEvery = 10 * time.Second
	}
	// The same constructor `agora validator --gateway` uses.
	svc, err := gateway.NewService(ctx, gateway.ServiceConfig{
		Gateway: gateway.Config{Key: hot["validator"], Model: "agora-devnet", Candidates: n.Validator.Candidates,
			Logger: o.Logger.With("gateway", "devnet"), Gatherers: []prometheus.Gatherer{n.Validator.Metrics()},
			Netuid: Netuid, ExplorerURL: o.ExplorerURL},
		Chain: c, Netuid: Netuid, LedgerPath: o.LedgerPath, Limits: o.GatewayLimits, ClaimInterval: claimEvery})
	if err != nil {
		n.Stop()
		return nil, err
	}
	n.Gateway = svc
	l, err := net.Listen("tcp", o.GatewayAddr)
	if err != nil {
		n.Stop()
		return nil, fmt.Errorf("gateway listen on %s: %w", o.GatewayAddr, err)
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := svc.Serve(l); !errors.Is(err, gateway.ErrServiceClosed) {
			o.Logger.Error("gateway stopped", "err", err.Error())
		}
	}()
	n.GatewayURL = "http://" + l.Addr().String() + "/v1"
	if o.Miners > 0 {
		// Miners answer only validators holding a permit, which the chain
		// grants at the subnet's first epoch; until the validator has scored a
		// miner the gateway has nowhere to route, so the devnet is not ready.
		o.Logger.Info("waiting for the validator's permit and first scores (the subnet's first epoch)")
		if err := n.waitRoutable(ctx); err != nil {
			n.Stop()
			return nil, fmt.Errorf("wait for the gateway to have a scored miner: %w", err)
		}
	}
	return n, nil
}

// waitRoutable returns once the validator has scored a miner the gateway
// can route to, or ctx ends.
func (n *Network) waitRoutable(ctx context.Context) error {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		cands, err := n.Validator.Candidates(ctx)
		if err == nil {
			for _, c := range cands {
				if c.Endpoint != "" && c.Score > 0 {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Stop shuts the gateway (which claims what it charged one last time),
// the miners and the validator down.
func (n *Network) Stop() {
	if n.Gateway != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := n.Gateway.Close(ctx); err != nil {
			n.log.Warn("devnet gateway close", "err", err.Error())
		}
		cancel()
	}
	n.cancel()
	for _, s := range n.servers {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s.Shutdown(ctx)
		cancel()
	}
	n.wg.Wait()
}

// lying wraps a backend and claims another model id.
type lying struct {
	miner.Backend
	claim string
}

func (l lying) ModelID() string { return l.claim }
