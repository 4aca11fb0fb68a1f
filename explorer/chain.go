package explorer

import (
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"sync"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain/emission"
	"github.com/agoranet/agora/chain/tx"
)

// agrFull is agr.Format with the whole AGR grouped by thousands
// ("21,000,000 AGR", "1,500.191666659 AGR"): exact, and readable.
func agrFull(n uint64) string {
	s := agr.Format(n)
	whole, rest, _ := strings.Cut(s, " ")
	w, frac, hasFrac := strings.Cut(whole, ".")
	w = digits(w)
	if hasFrac {
		w += "." + frac
	}
	return w + " " + rest
}

// digits groups a whole number by thousands: 1259820051 → 1,259,820,051.
func digits(v any) string {
	s := fmt.Sprint(v)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// chainRoutes registers the chain pages (owned by the chain half).
func (e *Explorer) chainRoutes() {
	// "GET /" also catches every path nothing else serves; loadHome answers
	// those with 404.
	e.page("GET /", "home", e.loadHome)
	e.page("GET /blocks", "blocks", e.loadBlocks)
	e.page("GET /blocks/{height}", "block", e.loadBlock)
	e.page("GET /txs/{hash}", "tx", e.loadTx)
	e.page("GET /accounts/{addr}", "account", e.loadAccount)
	e.page("GET /chain-validators", "chain_validators", e.loadChainValidators)
	e.searchRoutes()
	// An /api/ path nothing serves answers in JSON, not with the HTML 404.
	e.mux.HandleFunc("GET /api/", func(w http.ResponseWriter, r *http.Request) {
		e.serveJSON(w, r, func(r *http.Request) (any, error) {
			return nil, fmt.Errorf("no API endpoint at %s (see docs/explorer.md): %w", r.URL.Path, ErrNotFound)
		})
	})
}

// homeData is the overview: GET / and GET /api/status.
type homeData struct {
	ChainID string `json:"chain_id"`
	// Height is the latest committed block; live.js keeps #height current
	// from this field.
	Height          int64     `json:"height"`
	LatestBlockTime time.Time `json:"latest_block_time"`
	// AvgBlockTimeMs is the mean interval over the last AvgOverBlocks blocks.
	AvgBlockTimeMs    int64          `json:"avg_block_time_ms"`
	AvgOverBlocks     int            `json:"avg_over_blocks"`
	TargetBlockTimeMs uint64         `json:"target_block_time_ms"`
	ChainValidators   homeValidators `json:"chain_validators"`
	Supply            supplyView     `json:"supply"`
	Emission          emissionView   `json:"emission"`
	Subnets           []homeSubnet   `json:"subnets"`
	SubnetEmission    uint64         `json:"subnets_last_epoch_emission"` // Σ last_epoch_emission, the share's denominator
	RecentBlocks      []blockSummary `json:"recent_blocks"`
	chart             template.HTML  // the emission chart, for the page only
}

// Chart is the emission curve as SVG (not part of the JSON twin).
func (h *homeData) Chart() template.HTML { return h.chart }

// AvgBlockTime renders the mean block interval ("1.02 s").
func (h *homeData) AvgBlockTime() string { return durationMs(h.AvgBlockTimeMs) }

// TargetBlockTime renders the chain's target interval.
func (h *homeData) TargetBlockTime() string { return durationMs(int64(h.TargetBlockTimeMs)) }

type homeValidators struct {
	Active int    `json:"active"`
	Total  int    `json:"total"`
	Bonded uint64 `json:"bonded"`
}

// supplyView is where every base unit is. Total = genesis + minted − burned
// = circulating (account balances) + every pool below.
type supplyView struct {
	Cap               uint64 `json:"cap"`
	Genesis           uint64 `json:"genesis"`
	Minted            uint64 `json:"minted"`
	Burned            uint64 `json:"burned"`
	Slashed           uint64 `json:"slashed"` // part of burned
	Issued            uint64 `json:"issued"`  // genesis + minted: what counts toward the cap
	Total             uint64 `json:"total"`   // issued − burned
	Staked            uint64 `json:"staked"`
	Bonded            uint64 `json:"bonded"`
	Unbonding         uint64 `json:"unbonding"`
	Locked            uint64 `json:"locked"`
	Escrowed          uint64 `json:"escrowed"`
	PendingEmission   uint64 `json:"pending_emission"`
	SubnetPending     uint64 `json:"subnet_pending"`
	RevenuePending    uint64 `json:"revenue_pending"`
	RoyaltyHeld       uint64 `json:"royalty_held"`    // in model and dataset pools, unclaimed
	OfferingEscrow    uint64 `json:"offering_escrow"` // paid into open model offerings
	Circulating       uint64 `json:"circulating"`     // in account balances
	LastBlockEmission uint64 `json:"last_block_emission"`
}

// Awaiting is emission and revenue not yet paid out to anyone.
func (s supplyView) Awaiting() uint64 { return s.PendingEmission + s.SubnetPending + s.RevenuePending }

func newSupplyView(s *tx.Supply, capacity uint64) supplyView {
	v := supplyView{
		Cap: capacity, Genesis: s.Genesis, Minted: s.Minted, Burned: s.Burned, Slashed: s.Slashed,
		Staked: s.Staked, Bonded: s.Bonded, Unbonding: s.Unbonding, Locked: s.Locked, Escrowed: s.Escrowed,
		PendingEmission: s.PendingEmission, SubnetPending: s.SubnetPending, RevenuePending: s.RevenuePending,
		RoyaltyHeld: s.RoyaltyHeld, OfferingEscrow: s.OfferingEscrow,
		LastBlockEmission: s.LastBlockEmission,
	}
	// The chain keeps these sums from wrapping (bank.Reconcile); saturating
	// here only keeps a corrupt record from printing nonsense.
	v.Issued = agr.SaturatingAdd(s.Genesis, s.Minted)
	v.Total = subSat(v.Issued, s.Burned)
	held := v.Total
	for _, pool := range []uint64{s.Staked, s.Bonded, s.Unbonding, s.Locked, s.Escrowed, s.PendingEmission, s.SubnetPending, s.RevenuePending,
		s.RoyaltyHeld, s.OfferingEscrow} {
		held = subSat(held, pool)
	}
	v.Circulating = held
	return v
}

type emissionView struct {
	BlockRewardBase uint64          `json:"block_reward_base"`
	NextBlockReward uint64          `json:"next_block_reward"`
	Halvings        uint            `json:"halvings"` // so far
	Schedule        []emissionPhase `json:"schedule"`
	// horizon facts for the page
	TargetBlockTimeMs uint64 `json:"-"`
}

// When renders how long after genesis a height comes at the target block time.
func (e emissionView) When(height uint64) string {
	return durationLong(float64(height) * float64(e.TargetBlockTimeMs) / 1000)
}

type homeSubnet struct {
	Netuid            uint32 `json:"netuid"`
	Name              string `json:"name"`
	Owner             string `json:"owner"`
	Started           bool   `json:"started"`
	N                 uint32 `json:"uids"`
	LastEpochEmission uint64 `json:"last_epoch_emission"`
	TotalEmitted      uint64 `json:"total_emitted"`
	TotalRevenue      uint64 `json:"total_revenue"`
}

// blockSummary is one row of a block list.
type blockSummary struct {
	Height   int64     `json:"height"`
	Time     time.Time `json:"time"`
	Hash     string    `json:"hash"`
	NumTxs   int       `json:"num_txs"`
	Proposer proposer  `json:"proposer"`
}

// proposer names a block's proposer: CometBFT gives the consensus address,
// the chain validator list maps it to an operator and a moniker.
type proposer struct {
	ConsensusAddress string `json:"consensus_address"`
	Operator         string `json:"operator,omitempty"`
	Moniker          string `json:"moniker,omitempty"`
}

// Name is what the page shows for the proposer.
func (p proposer) Name() string {
	switch {
	case p.Moniker != "":
		return p.Moniker
	case p.Operator != "":
		return short(p.Operator)
	}
	return short(p.ConsensusAddress)
}

// recentBlocks is how many blocks the home page lists; averageOver how many
// intervals the block time is averaged over (one Blockchain call gives 20).
const (
	recentBlocks = 10
	averageOver  = 20
)

func (e *Explorer) loadHome(r *http.Request) (any, error) {
	if r.URL.Path != "/" && r.URL.Path != "/api/status" {
		return nil, fmt.Errorf("no page at %s: %w", r.URL.Path, ErrNotFound)
	}
	ctx, c := r.Context(), e.cfg.Chain
	var (
		chainID string
		metas   []*cmttypes.BlockMeta
		last    int64
		vals    *tx.ChainValidatorList
		supply  *tx.Supply
		params  *tx.Params
		subnets []*tx.Subnet
	)
	err := chainParallel(
		func() (err error) { chainID, err = c.ChainID(ctx); return },
		func() error {
			res, err := c.Blockchain(ctx, 0, 0)
			if err != nil {
				return err
			}
			metas, last = res.BlockMetas, res.LastHeight
			return nil
		},
		func() (err error) { vals, err = c.ChainValidators(ctx, false); return },
		func() (err error) { supply, _, err = c.Supply(ctx, false); return },
		func() (err error) { params, err = c.Params(ctx, false); return },
		func() (err error) { subnets, err = c.Subnets(ctx); return },
	)
	if err != nil {
		return nil, err
	}
	names := proposerNames(vals)
	h := &homeData{ChainID: chainID, Height: last, TargetBlockTimeMs: params.TargetBlockTimeMs,
		Subnets: []homeSubnet{}, RecentBlocks: []blockSummary{}}
	if len(metas) > 0 {
		h.LatestBlockTime = metas[0].Header.Time
		h.Height = max(h.Height, metas[0].Header.Height)
		if n := len(metas) - 1; n > 0 {
			h.AvgOverBlocks = n
			h.AvgBlockTimeMs = metas[0].Header.Time.Sub(metas[n].Header.Time).Milliseconds() / int64(n)
		}
	}
	for _, m := range metas[:min(recentBlocks, len(metas))] {
		h.RecentBlocks = append(h.RecentBlocks, summarize(m, names))
	}
	for _, v := range vals.GetValidators() {
		h.ChainValidators.Total++
		h.ChainValidators.Bonded += v.Bonded
		if validatorStatus(v) == "active" {
			h.ChainValidators.Active++
		}
	}
	h.Supply = newSupplyView(supply, params.SupplyCap)
	h.Emission = emissionView{
		BlockRewardBase:   params.BlockRewardBase,
		NextBlockReward:   emission.BlockReward(params.BlockRewardBase, params.SupplyCap, h.Supply.Issued),
		Halvings:          emission.Halvings(params.SupplyCap, h.Supply.Issued),
		Schedule:          emissionSchedule(params.BlockRewardBase, params.SupplyCap, supply.Genesis, emissionHorizon),
		TargetBlockTimeMs: params.TargetBlockTimeMs,
	}
	h.chart = emissionChart(h.Emission.Schedule, params.SupplyCap, h.Height)
	for _, s := range subnets {
		h.Subnets = append(h.Subnets, homeSubnet{
			Netuid: s.Netuid, Name: s.Name, Owner: addrString(s.Owner), Started: s.Started, N: s.N,
			LastEpochEmission: s.LastEpochEmission, TotalEmitted: s.TotalEmitted, TotalRevenue: s.TotalRevenue,
		})
		h.SubnetEmission += s.LastEpochEmission
	}
	return h, nil
}

// emissionChart draws total issued supply over block height toward the cap,
// with a vertical marker at the current height.
func emissionChart(phases []emissionPhase, capacity uint64, height int64) template.HTML {
	curve := Series{Name: "Issued"}
	for _, p := range phases {
		curve.Points = append(curve.Points, Point{X: float64(p.Height), Y: float64(p.Issued)})
	}
	now := Series{Name: "Now", Points: []Point{
		{X: float64(height), Y: 0}, {X: float64(height), Y: float64(capacity)},
	}}
	return Chart{
		Title:  "Emission toward the cap",
		XLabel: "block height",
		Series: []Series{curve, now},
		YMax:   float64(capacity),
		Format: func(v float64) string { return compact(v / float64(agr.Unit)) },
	}.SVG()
}

func summarize(m *cmttypes.BlockMeta, names proposers) blockSummary {
	return blockSummary{
		Height: m.Header.Height, Time: m.Header.Time, Hash: m.BlockID.Hash.String(), NumTxs: m.NumTxs,
		Proposer: names.lookup(m.Header.ProposerAddress),
	}
}

// proposers maps consensus addresses (upper hex) to chain validators.
type proposers map[string]proposer

func (p proposers) lookup(consensusAddr []byte) proposer {
	ca := fmt.Sprintf("%X", consensusAddr)
	if v, ok := p[ca]; ok {
		return v
	}
	return proposer{ConsensusAddress: ca}
}

func proposerNames(l *tx.ChainValidatorList) proposers {
	out := proposers{}
	for _, v := range l.GetValidators() {
		ca := fmt.Sprintf("%X", tx.ConsensusAddress(v.ConsensusPubKey))
		out[ca] = proposer{ConsensusAddress: ca, Operator: addrString(v.Operator), Moniker: v.Moniker}
	}
	return out
}

// validatorStatus is a chain validator's standing, as `agora chain-validator
// list` prints it: active (in the set CometBFT uses), candidate (bonded,
// outranked), jailed, tombstoned (double-signed, never returns), unbonding
// (no bond left, an unbonding payout pending) or unbonded.
func validatorStatus(v *tx.ChainValidator) string {
	switch {
	case v.Tombstoned:
		return "tombstoned"
	case v.Jailed:
		return "jailed"
	case v.Power > 0:
		return "active"
	case v.Bonded >= agr.Unit || v.Bootstrap:
		// chain/chainval.Power > 0: whole AGR bonded, or a bootstrap entry.
		return "candidate"
	case len(v.Unbonding) > 0:
		return "unbonding"
	}
	return "unbonded"
}

// chainParallel runs the reads of one page at once and returns the first
// error; a page costs its slowest read, not their sum.
func chainParallel(fns ...func() error) error {
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, f := range fns {
		wg.Go(func() { errs[i] = f() })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// addrString renders a 20-byte address as bech32 (hex if it is not one).
func addrString(b []byte) string {
	a, err := address.FromBytes(b)
	if err != nil {
		return fmt.Sprintf("%X", b)
	}
	return a.String()
}

func subSat(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

// durationMs renders milliseconds as seconds ("1.02 s", "850 ms").
func durationMs(ms int64) string {
	if ms < 1000 {
		return fmt.Sprintf("%d ms", ms)
	}
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", float64(ms)/1000), "0"), ".") + " s"
}

// durationLong renders a span of seconds coarsely ("3.9 years", "41
// days"); float, because a schedule's far end overflows a time.Duration.
func durationLong(seconds float64) string {
	const hour, day = 3600, 86400
	switch {
	case seconds < 0:
		return "—"
	case seconds < 2*hour:
		return fmt.Sprintf("%.0f minutes", seconds/60)
	case seconds < 2*day:
		return fmt.Sprintf("%.0f hours", seconds/hour)
	case seconds < 365*day:
		return fmt.Sprintf("%.0f days", seconds/day)
	}
	return fmt.Sprintf("%.1f years", seconds/day/365.25)
}
