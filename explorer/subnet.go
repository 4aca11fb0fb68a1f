package explorer

import (
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"math"
	"math/big"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/client"
)

// agrShort renders base units as AGR for dense tables: two decimals from
// 1 AGR up, four significant digits below, always rounded down, so a
// non-zero amount never shows as 0. The exact figure goes in a title.
func agrShort(n uint64) string {
	if n == 0 {
		return "0 AGR"
	}
	whole, frac := n/agr.Unit, n%agr.Unit
	if whole > 0 {
		w := strconv.FormatUint(whole, 10)
		for i := len(w) - 3; i > 0; i -= 3 {
			w = w[:i] + "," + w[i:]
		}
		return fmt.Sprintf("%s.%02d AGR", w, frac/(agr.Unit/100))
	}
	digits := fmt.Sprintf("%09d", frac) // agr.Unit is 10⁹
	lead := len(digits) - len(strings.TrimLeft(digits, "0"))
	return "0." + strings.TrimRight(digits[:min(len(digits), lead+4)], "0") + " AGR"
}

// subnetRoutes registers the subnet pages (owned by the subnet half).
func (e *Explorer) subnetRoutes() {
	e.caches = &subnetCaches{history: newCostLRU(historyCacheCost)}
	e.page("GET /subnets", "subnets", e.loadSubnets)
	e.page("GET /subnets/{netuid}", "subnet", e.loadSubnet)
	e.page("GET /subnets/{netuid}/neurons/{uid}", "neuron", e.loadNeuron)
	e.page("GET /channels/{id}", "channel", e.loadChannel)
	// JSON only: the chat page reads the miners' encryption keys from here.
	e.apiOnly("GET /api/subnets/{netuid}/keys", e.loadKeys)
}

// api registers a JSON endpoint with no HTML page; it answers exactly as a
// page's JSON twin does (status codes, error shape, CORS).
func (e *Explorer) apiOnly(pattern string, load loader) {
	e.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) { e.serveJSON(w, r, load) })
}

// netuidParam parses the {netuid} path segment.
func netuidParam(r *http.Request) (uint32, error) {
	s := r.PathValue("netuid")
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, BadRequestf("%q is not a subnet number (netuid)", s)
	}
	return uint32(n), nil
}

// uidParam parses the {uid} path segment.
func uidParam(r *http.Request) (uint32, error) {
	s := r.PathValue("uid")
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, BadRequestf("%q is not a UID", s)
	}
	return uint32(n), nil
}

// chainErr turns the client's "no such subnet/channel" into the page's 404.
func subnetNotFound(err error) error {
	if errors.Is(err, client.ErrNoSubnet) || errors.Is(err, client.ErrNoChannel) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}

// addr renders a 20-byte address field; anything else (empty, malformed
// state) renders as "" rather than failing the page.
func addressText(b []byte) string {
	a, err := address.FromBytes(b)
	if err != nil || a.IsZero() {
		return ""
	}
	return a.String()
}

// Frac is a Q32.32 fraction of one, as Yuma writes incentive, consensus,
// trust and dividends. In JSON it is a decimal with up to 10 places, enough
// to recover the exact chain value (round(x·2³²)); pages show 4.
type Frac uint64

func (f Frac) rat() *big.Rat {
	return new(big.Rat).SetFrac(new(big.Int).SetUint64(uint64(f)), new(big.Int).Lsh(big.NewInt(1), 32))
}

// MarshalJSON writes the fraction as a JSON number, computed exactly.
func (f Frac) MarshalJSON() ([]byte, error) {
	s := f.rat().FloatString(10)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return []byte(s), nil
}

// UnmarshalJSON reads what MarshalJSON wrote, back to the chain's value.
func (f *Frac) UnmarshalJSON(b []byte) error {
	r, ok := new(big.Rat).SetString(string(b))
	if !ok || r.Sign() < 0 {
		return fmt.Errorf("fraction %s: not a non-negative number", b)
	}
	r.Mul(r, new(big.Rat).SetInt(new(big.Int).Lsh(big.NewInt(1), 32)))
	// Round half up: 10 decimals are within 0.03 of the exact value.
	q := new(big.Int).Quo(new(big.Int).Add(new(big.Int).Mul(r.Num(), big.NewInt(2)), r.Denom()), new(big.Int).Mul(r.Denom(), big.NewInt(2)))
	if !q.IsUint64() {
		return fmt.Errorf("fraction %s: out of range", b)
	}
	*f = Frac(q.Uint64())
	return nil
}

// String is the fraction with 4 decimals, as the tables show it.
func (f Frac) String() string { return share(uint64(f)) }

// Pct is the fraction as a percentage with 2 decimals.
func (f Frac) Pct() string { return percent(uint64(f), 1<<32) }

// Float is for charts only.
func (f Frac) Float() float64 { return float64(f) / (1 << 32) }

// SubnetSummary is one subnet in the list (and the head of its page).
type SubnetSummary struct {
	Netuid  uint32 `json:"netuid"`
	Name    string `json:"name"`
	Owner   string `json:"owner"`
	Started bool   `json:"started"`
	Neurons uint32 `json:"neurons"`
	MaxUIDs uint32 `json:"max_uids"`
	// Burn is what registering a UID costs now (it decays every tempo).
	Burn       uint64 `json:"burn"`
	PricePer1K uint64 `json:"price_per_1k"`
	ModelID    string `json:"model_id"`
	LastEpoch  uint64 `json:"last_epoch"` // 0: no epoch yet
	// EmissionShare is this subnet's part of each block's emission: the
	// chain splits it equally among started subnets.
	EmissionShare     Frac   `json:"emission_share"`
	LastEpochEmission uint64 `json:"last_epoch_emission"`
}

func subnetSummaryOf(s *tx.Subnet, height uint64, started int) SubnetSummary {
	p := s.Params
	if p == nil {
		p = &tx.SubnetParams{}
	}
	sum := SubnetSummary{Netuid: s.Netuid, Name: s.Name, Owner: addressText(s.Owner), Started: s.Started, Neurons: s.N, MaxUIDs: p.MaxUids,
		PricePer1K: p.PricePer_1K, ModelID: p.ModelId, LastEpochEmission: s.LastEpochEmission}
	if s.Params != nil {
		sum.Burn = s.BurnAt(height)
	}
	if s.LastEpoch > s.RegisteredAt {
		sum.LastEpoch = s.LastEpoch
	}
	if s.Started && started > 0 {
		sum.EmissionShare = Frac((uint64(1) << 32) / uint64(started))
	}
	return sum
}

func startedSubnets(subs []*tx.Subnet) int {
	n := 0
	for _, s := range subs {
		if s.Started {
			n++
		}
	}
	return n
}

// SubnetsPage is /subnets.
type SubnetsPage struct {
	Height  int64           `json:"height"`
	Subnets []SubnetSummary `json:"subnets"`
}

func (e *Explorer) loadSubnets(r *http.Request) (any, error) {
	ctx := r.Context()
	h, err := e.cfg.Chain.Height(ctx)
	if err != nil {
		return nil, err
	}
	subs, err := e.cfg.Chain.Subnets(ctx)
	if err != nil {
		return nil, err
	}
	p := &SubnetsPage{Height: h, Subnets: []SubnetSummary{}}
	started := startedSubnets(subs)
	for _, s := range subs {
		p.Subnets = append(p.Subnets, subnetSummaryOf(s, uint64(h), started))
	}
	return p, nil
}

// Params are a subnet's hyperparameters, as the owner set them.
type Params struct {
	Tempo              uint64 `json:"tempo"`
	MaxUIDs            uint32 `json:"max_uids"`
	MaxValidators      uint32 `json:"max_validators"`
	ImmunityPeriod     uint64 `json:"immunity_period"`
	Kappa              uint32 `json:"kappa"`
	BondsMovingAverage uint64 `json:"bonds_moving_average"`
	BondsPenalty       uint32 `json:"bonds_penalty"`
	ActivityCutoff     uint64 `json:"activity_cutoff"`
	WeightsRateLimit   uint64 `json:"weights_rate_limit"`
	CommitReveal       bool   `json:"commit_reveal"`
	RevealPeriod       uint64 `json:"reveal_period"`
	MinBurn            uint64 `json:"min_burn"`
	MaxBurn            uint64 `json:"max_burn"`
	StakeThreshold     uint64 `json:"stake_threshold"`
	MinAllowedWeights  uint32 `json:"min_allowed_weights"`
	YumaVersion        uint32 `json:"yuma_version"`
	WeightsVersion     uint64 `json:"weights_version"`
	ServingRateLimit   uint64 `json:"serving_rate_limit"`
	ModelID            string `json:"model_id"`
	PricePer1K         uint64 `json:"price_per_1k"`
}

func paramsOf(p *tx.SubnetParams) Params {
	if p == nil {
		return Params{}
	}
	return Params{p.Tempo, p.MaxUids, p.MaxValidators, p.ImmunityPeriod, p.Kappa, p.BondsMovingAverage, p.BondsPenalty,
		p.ActivityCutoff, p.WeightsRateLimit, p.CommitReveal, p.RevealPeriod, p.MinBurn, p.MaxBurn, p.StakeThreshold,
		p.MinAllowedWeights, p.YumaVersion, p.WeightsVersion, p.ServingRateLimit, p.ModelId, p.PricePer_1K}
}

// ParamRow is one labelled hyperparameter on the page.
type ParamRow struct{ Label, Value, Help string }

// Rows labels every hyperparameter plainly for the page.
func (p Params) Rows() []ParamRow {
	blocks := func(n uint64) string { return plural(n, "block") }
	u16 := func(v uint32) string { return percent(uint64(v), 65535) }
	yes := map[bool]string{true: "on", false: "off"}
	return []ParamRow{
		{"Tempo", blocks(p.Tempo), "An epoch (the payout that scores everyone) runs once every tempo."},
		{"Max UIDs", fmt.Sprint(p.MaxUIDs), "Seats on the subnet; when full, a new registration replaces the lowest earner past immunity."},
		{"Max validators", fmt.Sprint(p.MaxValidators), "How many of the highest-staked UIDs get a validator permit (may set weights)."},
		{"Immunity period", blocks(p.ImmunityPeriod), "A newly registered UID cannot be replaced for this long."},
		{"Kappa", u16(p.Kappa), "Share of validator stake that must agree for a score to count (consensus majority)."},
		{"Bonds moving average", percent(p.BondsMovingAverage, 1_000_000), "How much of a validator's past bonds carries over each epoch."},
		{"Bonds penalty", u16(p.BondsPenalty), "How hard weights above consensus are cut when bonds are formed."},
		{"Activity cutoff", blocks(p.ActivityCutoff), "A UID that has not set weights or served within this many blocks counts as inactive."},
		{"Weights rate limit", blocks(p.WeightsRateLimit), "Minimum gap between two weight updates of one validator."},
		{"Commit-reveal", yes[p.CommitReveal], "Validators first publish a hash of their weights and reveal them later, so nobody can copy them."},
		{"Reveal period", plural(p.RevealPeriod, "tempo"), "How long committed weights stay hidden."},
		{"Min burn", agr.Format(p.MinBurn), "Lowest registration price."},
		{"Max burn", agr.Format(p.MaxBurn), "Highest registration price."},
		{"Stake threshold", agr.Format(p.StakeThreshold), "Stake a validator needs to set weights."},
		{"Min allowed weights", fmt.Sprint(p.MinAllowedWeights), "Fewest UIDs a validator's weights must name."},
		{"Yuma version", fmt.Sprint(p.YumaVersion), "Which version of Yuma Consensus scores this subnet."},
		{"Weights version", fmt.Sprint(p.WeightsVersion), "Oldest validator software version whose weights are accepted."},
		{"Serving rate limit", blocks(p.ServingRateLimit), "Minimum gap between two endpoint updates of one UID."},
		{"Price per 1k tokens", agr.Format(p.PricePer1K), "What a user pays miners for 1,000 tokens of output."},
	}
}

func plural(n uint64, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// NeuronRow is one UID in the metagraph.
type NeuronRow struct {
	UID             uint32 `json:"uid"`
	Hotkey          string `json:"hotkey"`
	Coldkey         string `json:"coldkey"`
	Stake           uint64 `json:"stake"`
	Trust           Frac   `json:"trust"` // validator trust
	Consensus       Frac   `json:"consensus"`
	Incentive       Frac   `json:"incentive"`
	Dividends       Frac   `json:"dividends"`
	Emission        uint64 `json:"emission"` // base units earned in the last epoch
	Endpoint        string `json:"endpoint"`
	Active          bool   `json:"active"`
	ValidatorPermit bool   `json:"validator_permit"`
}

func neuronRow(uid int, n *tx.Neuron, stake []uint64) NeuronRow {
	r := NeuronRow{UID: uint32(uid), Hotkey: addressText(n.Hotkey), Coldkey: addressText(n.Coldkey), Trust: Frac(n.ValidatorTrust),
		Consensus: Frac(n.Consensus), Incentive: Frac(n.Incentive), Dividends: Frac(n.Dividends), Emission: n.Emission,
		Endpoint: n.Endpoint, Active: n.Active, ValidatorPermit: n.ValidatorPermit}
	if uid < len(stake) {
		r.Stake = stake[uid]
	}
	return r
}

// SubnetPage is /subnets/{netuid}.
type SubnetPage struct {
	SubnetSummary
	Height          int64  `json:"height"`
	OwnerHotkey     string `json:"owner_hotkey"` // UID 0
	RegisteredAt    uint64 `json:"registered_at"`
	Locked          uint64 `json:"locked"`
	PendingEmission uint64 `json:"pending_emission"`
	PendingRevenue  uint64 `json:"pending_revenue"`
	TotalEmitted    uint64 `json:"total_emitted"`
	TotalRevenue    uint64 `json:"total_revenue"`
	NextEpoch       uint64 `json:"next_epoch"`
	Params          Params `json:"params"`

	Sort      string      `json:"sort"`
	Page      int         `json:"page"`
	Pages     int         `json:"pages"`
	PerPage   int         `json:"per_page"`
	Metagraph []NeuronRow `json:"metagraph"` // this page of the UIDs, in Sort order

	// Epochs are the last epochs, oldest first; TopEmission the UIDs that
	// earned the most over them, with what they earned in each.
	Epochs      []EpochTotal `json:"epochs"`
	TopEmission []UIDSeries  `json:"top_emission"`

	IncentiveChart template.HTML `json:"-"`
	EmissionChart  template.HTML `json:"-"`
}

// EpochTotal is one past epoch of a subnet.
type EpochTotal struct {
	Height   uint64 `json:"height"`
	Emission uint64 `json:"emission"`
}

// UIDSeries is one UID's emission per epoch (aligned with Epochs; 0 where
// another hotkey held the UID).
type UIDSeries struct {
	UID      uint32   `json:"uid"`
	Hotkey   string   `json:"hotkey"`
	Emission []uint64 `json:"emission"`
}

// metagraphPerPage is the metagraph rows per page: a 4096-UID subnet is 16 pages.
const metagraphPerPage = 256

var metagraphSorts = map[string]func(a, b NeuronRow) bool{
	"uid":       nil,
	"incentive": func(a, b NeuronRow) bool { return a.Incentive > b.Incentive },
	"emission":  func(a, b NeuronRow) bool { return a.Emission > b.Emission },
	"stake":     func(a, b NeuronRow) bool { return a.Stake > b.Stake },
	"dividends": func(a, b NeuronRow) bool { return a.Dividends > b.Dividends },
}

// nextEpoch is the first height after h at which the subnet's epoch is due.
func nextEpochHeight(netuid uint32, tempo, h uint64) uint64 {
	if tempo == 0 {
		return 0
	}
	// Due where (height + netuid + 1) is a multiple of tempo + 1.
	period, off := tempo+1, uint64(netuid)+1
	next := ((h+off)/period+1)*period - off
	for next <= h {
		next += period
	}
	return next
}

func (e *Explorer) loadSubnet(r *http.Request) (any, error) {
	netuid, err := netuidParam(r)
	if err != nil {
		return nil, err
	}
	sortBy := r.URL.Query().Get("sort")
	if sortBy == "" {
		sortBy = "uid"
	}
	less, ok := metagraphSorts[sortBy]
	if !ok {
		return nil, BadRequestf("sort by %q: use uid, incentive, emission, stake or dividends", sortBy)
	}
	page := 1
	if s := r.URL.Query().Get("page"); s != "" {
		if page, err = strconv.Atoi(s); err != nil || page < 1 {
			return nil, BadRequestf("page %q is not a page number", s)
		}
	}
	ctx := r.Context()
	mg, err := e.metagraph(ctx, netuid)
	if err != nil {
		return nil, subnetNotFound(err)
	}
	subs, err := e.cfg.Chain.Subnets(ctx)
	if err != nil {
		return nil, err
	}
	sub := mg.Subnet
	p := &SubnetPage{SubnetSummary: subnetSummaryOf(sub, uint64(mg.Height), startedSubnets(subs)), Height: mg.Height,
		RegisteredAt: sub.RegisteredAt, Locked: sub.Locked, PendingEmission: sub.PendingEmission, PendingRevenue: sub.PendingRevenue,
		TotalEmitted: sub.TotalEmitted, TotalRevenue: sub.TotalRevenue, Params: paramsOf(sub.Params),
		Sort: sortBy, Page: page, PerPage: metagraphPerPage, Epochs: []EpochTotal{}, TopEmission: []UIDSeries{}}
	if sub.Started {
		p.NextEpoch = nextEpochHeight(netuid, p.Params.Tempo, uint64(mg.Height))
	}
	if len(mg.Neurons) > 0 {
		p.OwnerHotkey = addressText(mg.Neurons[0].Hotkey)
	}
	rows := make([]NeuronRow, len(mg.Neurons))
	for uid, n := range mg.Neurons {
		rows[uid] = neuronRow(uid, n, mg.Stake)
	}
	p.IncentiveChart = uidIncentiveChart(rows)
	if less != nil {
		// Stable: equal values stay in UID order.
		slices.SortStableFunc(rows, func(a, b NeuronRow) int {
			switch {
			case less(a, b):
				return -1
			case less(b, a):
				return 1
			}
			return 0
		})
	}
	p.Pages = max(1, (len(rows)+metagraphPerPage-1)/metagraphPerPage)
	if page > p.Pages {
		return nil, fmt.Errorf("%w: page %d (the metagraph has %d pages)", ErrNotFound, page, p.Pages)
	}
	p.Metagraph = rows[min(len(rows), (page-1)*metagraphPerPage):min(len(rows), page*metagraphPerPage)]

	hist, err := e.epochHistory(ctx, sub)
	if err != nil {
		// History is a chart; the metagraph is the page.
		e.log.Warn("explorer epoch history", "netuid", netuid, "err", err.Error())
	}
	p.Epochs, p.TopEmission = emissionHistory(hist, mg, 5)
	p.EmissionChart = topEmissionChart(p.Epochs, p.TopEmission)
	return p, nil
}

// PrevPage and NextPage are 0 when there is none.
func (p *SubnetPage) PrevPage() int {
	if p.Page > 1 {
		return p.Page - 1
	}
	return 0
}

func (p *SubnetPage) NextPage() int {
	if p.Page < p.Pages {
		return p.Page + 1
	}
	return 0
}

// Sorts lists the table's sort keys for the page's links.
func (p *SubnetPage) Sorts() []string {
	return []string{"uid", "stake", "incentive", "dividends", "emission"}
}

// maxUIDBars is the most bars a per-UID chart draws; larger subnets are drawn
// in groups of consecutive UIDs.
const maxUIDBars = 256

func uidIncentiveChart(rows []NeuronRow) template.HTML {
	c := Chart{Title: "Incentive by UID (last epoch)", XLabel: "UID", Bars: true,
		Format: func(v float64) string { return fmt.Sprintf("%.2f", v) }}
	group := max(1, (len(rows)+maxUIDBars-1)/maxUIDBars)
	if group > 1 {
		c.Title = fmt.Sprintf("Incentive by UID (last epoch, UIDs in groups of %d)", group)
	}
	s := Series{Name: "incentive"}
	for i := 0; i < len(rows); i += group {
		var sum float64
		for _, r := range rows[i:min(len(rows), i+group)] {
			sum += r.Incentive.Float()
		}
		s.Points = append(s.Points, Point{X: float64(i), Y: sum})
	}
	c.Series = []Series{s}
	return c.SVG()
}

// emissionHistory totals each epoch and picks the top UIDs by emission
// over the window. A UID counts only for the epochs its current hotkey
// held it.
func emissionHistory(hist []*epochSnap, mg *tx.Metagraph, top int) ([]EpochTotal, []UIDSeries) {
	epochs := make([]EpochTotal, len(hist))
	for i, s := range hist {
		epochs[i] = EpochTotal{Height: s.Height, Emission: s.Emission}
	}
	series := make([]UIDSeries, len(mg.Neurons))
	totals := make([]uint64, len(mg.Neurons))
	for uid, n := range mg.Neurons {
		series[uid] = UIDSeries{UID: uint32(uid), Hotkey: addressText(n.Hotkey), Emission: make([]uint64, len(hist))}
		for i, s := range hist {
			if uid < len(s.UIDs) && string(s.UIDs[uid].Hotkey[:]) == string(n.Hotkey) {
				series[uid].Emission[i] = s.UIDs[uid].Emission
				totals[uid] = agr.SaturatingAdd(totals[uid], s.UIDs[uid].Emission)
			}
		}
	}
	order := make([]int, len(series))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case totals[a] > totals[b]:
			return -1
		case totals[a] < totals[b]:
			return 1
		}
		return 0
	})
	out := []UIDSeries{}
	for _, uid := range order[:min(top, len(order))] {
		if totals[uid] > 0 {
			out = append(out, series[uid])
		}
	}
	return epochs, out
}

func agrChartValue(n uint64) float64 { return float64(n) / float64(agr.Unit) }

// headroom picks a round axis top above max with room for the legend,
// which the chart draws across the top of the plot: quarters of it are
// round numbers too.
func headroom(max float64) float64 {
	if max <= 0 {
		return 0
	}
	want := max * 1.25
	scale := math.Pow(10, math.Floor(math.Log10(want)))
	for _, m := range []float64{1, 1.2, 2, 4, 6, 8, 10} {
		if m*scale >= want {
			return m * scale
		}
	}
	return 10 * scale
}

func topEmissionChart(epochs []EpochTotal, top []UIDSeries) template.HTML {
	c := Chart{Title: "Emission per epoch, top UIDs (AGR)", XLabel: "block"}
	var peak float64
	for _, u := range top {
		for _, v := range u.Emission {
			peak = math.Max(peak, agrChartValue(v))
		}
	}
	c.YMax = headroom(peak)
	for _, u := range top {
		s := Series{Name: fmt.Sprintf("UID %d", u.UID)}
		for i, v := range u.Emission {
			s.Points = append(s.Points, Point{X: float64(epochs[i].Height), Y: agrChartValue(v)})
		}
		c.Series = append(c.Series, s)
	}
	return c.SVG()
}

// ChannelPage is /channels/{id}: a payment channel from a user (payer) to
// a validator's gateway (payee), settled by claims.
type ChannelPage struct {
	ID           uint64 `json:"id"`
	Payer        string `json:"payer"`
	Payee        string `json:"payee"`
	Netuid       uint32 `json:"netuid"`
	SubnetName   string `json:"subnet_name"`
	Deposit      uint64 `json:"deposit"`
	Claimed      uint64 `json:"claimed"`
	Remaining    uint64 `json:"remaining"`
	ExpiryHeight uint64 `json:"expiry_height"`
	OpenedAt     uint64 `json:"opened_at"`
	Height       int64  `json:"height"`
	Expired      bool   `json:"expired"`
}

func (e *Explorer) loadChannel(r *http.Request) (any, error) {
	s := r.PathValue("id")
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return nil, BadRequestf("%q is not a channel number", s)
	}
	ctx := r.Context()
	ch, err := e.cfg.Chain.Channel(ctx, id, false)
	if errors.Is(err, client.ErrNoChannel) {
		return nil, fmt.Errorf("%w: channel %d is closed or was never opened", ErrNotFound, id)
	}
	if err != nil {
		return nil, err
	}
	h, err := e.cfg.Chain.Height(ctx)
	if err != nil {
		return nil, err
	}
	p := &ChannelPage{ID: ch.Id, Payer: addressText(ch.Payer), Payee: addressText(ch.Payee), Netuid: ch.Netuid, Deposit: ch.Deposit,
		Claimed: ch.Claimed, ExpiryHeight: ch.ExpiryHeight, OpenedAt: ch.OpenedAt, Height: h,
		Expired: uint64(h) >= ch.ExpiryHeight}
	if ch.Deposit > ch.Claimed {
		p.Remaining = ch.Deposit - ch.Claimed
	}
	if sub, err := e.cfg.Chain.Subnet(ctx, ch.Netuid, false); err == nil {
		p.SubnetName = sub.Name
	}
	return p, nil
}

// BlocksLeft is how many blocks remain until expiry (0 once expired).
func (p *ChannelPage) BlocksLeft() uint64 {
	if p.Expired {
		return 0
	}
	return p.ExpiryHeight - uint64(p.Height)
}

// Keys is /api/subnets/{netuid}/keys: the X25519 keys clients seal
// prompts to, one per neuron that published one.
type Keys struct {
	Netuid uint32      `json:"netuid"`
	Height int64       `json:"height"`
	Keys   []NeuronKey `json:"keys"`
}

// NeuronKey is one neuron's published encryption key.
type NeuronKey struct {
	UID    uint32 `json:"uid"`
	Hotkey string `json:"hotkey"`
	X25519 string `json:"x25519"` // 64 lowercase hex digits
}

func (e *Explorer) loadKeys(r *http.Request) (any, error) {
	netuid, err := netuidParam(r)
	if err != nil {
		return nil, err
	}
	mg, err := e.metagraph(r.Context(), netuid)
	if err != nil {
		return nil, subnetNotFound(err)
	}
	return keysOf(netuid, mg), nil
}

func keysOf(netuid uint32, mg *tx.Metagraph) *Keys {
	k := &Keys{Netuid: netuid, Height: mg.Height, Keys: []NeuronKey{}}
	for uid, n := range mg.Neurons {
		// Only a key of the right size can be sealed to; anything else is
		// as good as unpublished.
		if len(n.X25519PubKey) != 32 {
			continue
		}
		k.Keys = append(k.Keys, NeuronKey{UID: uint32(uid), Hotkey: addressText(n.Hotkey), X25519: hex.EncodeToString(n.X25519PubKey)})
	}
	return k
}
