package explorer

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/agoranet/agora/chain/tx"
)

// NeuronPage is /subnets/{netuid}/neurons/{uid}: one miner or validator.
type NeuronPage struct {
	Netuid     uint32 `json:"netuid"`
	SubnetName string `json:"subnet_name"`
	Height     int64  `json:"height"`
	NeuronRow
	ModelID      string `json:"model_id"`     // what it says it serves
	PinnedModel  string `json:"pinned_model"` // what the subnet pins
	X25519       string `json:"x25519"`       // hex; "" when not published
	RegisteredAt uint64 `json:"registered_at"`
	LastUpdate   uint64 `json:"last_update"`
	ServedAt     uint64 `json:"served_at"`

	// History is the last epochs, oldest first, while this hotkey held the UID.
	History []NeuronEpoch `json:"history"`
	// Scores are the weights validators gave this UID at each epoch of
	// History (a miner's score), as a share of each validator's weights.
	Scores []ValidatorScores `json:"scores"`
	// WeightsSet are the UIDs this neuron weights now (a validator's
	// scores of the miners), highest first, at most 20 of WeightsTotal.
	WeightsSet   []WeightGiven `json:"weights_set"`
	WeightsTotal int           `json:"weights_total"`
	// Gateways are what validators' gateways report of this UID (off chain).
	Gateways []GatewayReport `json:"gateways"`

	ResultsChart  template.HTML `json:"-"`
	EmissionChart template.HTML `json:"-"`
	ScoresChart   template.HTML `json:"-"`
}

// NeuronEpoch is one UID's results in one epoch.
type NeuronEpoch struct {
	Height    uint64 `json:"height"`
	Incentive Frac   `json:"incentive"`
	Consensus Frac   `json:"consensus"`
	Trust     Frac   `json:"trust"`
	Dividends Frac   `json:"dividends"`
	Emission  uint64 `json:"emission"`
	Stake     uint64 `json:"stake"`
}

// ValidatorScores is the weight one validator gave a UID per epoch
// (aligned with NeuronPage.History); null where it set none.
type ValidatorScores struct {
	UID     uint32  `json:"uid"`
	Hotkey  string  `json:"hotkey"`
	Weights []*Frac `json:"weights"`
}

// WeightGiven is one entry of a validator's weights.
type WeightGiven struct {
	UID    uint32 `json:"uid"`
	Hotkey string `json:"hotkey"`
	Value  uint32 `json:"value"` // as set on chain
	Share  Frac   `json:"share"` // of the validator's whole row
}

// GatewayReport is one gateway's view of a UID. Pointers are null when the
// gateway does not report that figure.
type GatewayReport struct {
	URL          string   `json:"url"`
	Reported     bool     `json:"reported"`
	Score        *float64 `json:"score"`
	Checks       *uint64  `json:"checks"`
	FailedChecks *uint64  `json:"failed_checks"`
	TokensServed *uint64  `json:"tokens_served"`
	Error        string   `json:"error,omitempty"`
}

// ScoreText is the gateway's score with 3 decimals ("" when absent).
func (g GatewayReport) ScoreText() string {
	if g.Score == nil {
		return ""
	}
	return fmt.Sprintf("%.3f", *g.Score)
}

// ShowGateways reports whether the page has a gateway section: gateways
// score miners, so a validator's page shows one only if a gateway
// reports it.
func (p *NeuronPage) ShowGateways() bool {
	if len(p.Gateways) == 0 {
		return false
	}
	if !p.ValidatorPermit {
		return true
	}
	return slices.ContainsFunc(p.Gateways, func(g GatewayReport) bool { return g.Reported })
}

// Role is "validator" for a UID holding a validator permit, else "miner".
func (p *NeuronPage) Role() string {
	if p.ValidatorPermit {
		return "validator"
	}
	return "miner"
}

// ServesPinned reports whether the neuron claims the subnet's pinned model.
func (p *NeuronPage) ServesPinned() bool { return p.ModelID != "" && p.ModelID == p.PinnedModel }

// maxScoreValidators bounds the validators whose weights a miner page
// reads per epoch (the highest-staked permit holders).
const maxScoreValidators = 16

func (e *Explorer) loadNeuron(r *http.Request) (any, error) {
	netuid, err := netuidParam(r)
	if err != nil {
		return nil, err
	}
	uid, err := uidParam(r)
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	mg, err := e.metagraph(ctx, netuid)
	if err != nil {
		return nil, subnetNotFound(err)
	}
	if int(uid) >= len(mg.Neurons) {
		return nil, fmt.Errorf("%w: subnet %d has no UID %d (it has %d)", ErrNotFound, netuid, uid, len(mg.Neurons))
	}
	n := mg.Neurons[uid]
	p := &NeuronPage{Netuid: netuid, SubnetName: mg.Subnet.Name, Height: mg.Height, NeuronRow: neuronRow(int(uid), n, mg.Stake),
		ModelID: n.ModelId, RegisteredAt: n.RegisteredAt, LastUpdate: n.LastUpdate, ServedAt: n.ServedAt,
		History: []NeuronEpoch{}, Scores: []ValidatorScores{}, WeightsSet: []WeightGiven{}, Gateways: []GatewayReport{}}
	if mg.Subnet.Params != nil {
		p.PinnedModel = mg.Subnet.Params.ModelId
	}
	if len(n.X25519PubKey) == 32 {
		p.X25519 = hex.EncodeToString(n.X25519PubKey)
	}
	// Gateways answer (or time out) while the chain is read.
	var gw sync.WaitGroup
	p.Gateways = make([]GatewayReport, len(e.cfg.Gateways))
	for i, u := range e.cfg.Gateways {
		gw.Go(func() { p.Gateways[i] = gatewayReport(ctx, u, uid, p.Hotkey) })
	}
	defer gw.Wait()

	hist, err := e.epochHistory(ctx, mg.Subnet)
	if err != nil {
		e.log.Warn("explorer epoch history", "netuid", netuid, "err", err.Error())
	}
	// Only the epochs this hotkey held the UID: a replaced neuron's past
	// is someone else's.
	var held []*epochSnap
	for _, s := range hist {
		if int(uid) < len(s.UIDs) && string(s.UIDs[uid].Hotkey[:]) == string(n.Hotkey) {
			held = append(held, s)
			u := s.UIDs[uid]
			p.History = append(p.History, NeuronEpoch{Height: s.Height, Incentive: Frac(u.Incentive), Consensus: Frac(u.Consensus),
				Trust: Frac(u.Trust), Dividends: Frac(u.Dividends), Emission: u.Emission, Stake: u.Stake})
		}
	}
	if p.Scores, err = e.scoresOf(ctx, mg, uid, held); err != nil {
		return nil, err
	}
	if err := e.weightsSet(ctx, p, mg); err != nil {
		return nil, err
	}
	p.ResultsChart, p.EmissionChart, p.ScoresChart = neuronCharts(p)
	gw.Wait()
	return p, nil
}

// scoresOf reads, for each epoch in held, the weight each of the subnet's
// current validators gave uid. Rows at past heights are cached, and every
// miner page of a subnet reads the same rows.
func (e *Explorer) scoresOf(ctx context.Context, mg *tx.Metagraph, uid uint32, held []*epochSnap) ([]ValidatorScores, error) {
	var vals []int
	for v, n := range mg.Neurons {
		if n.ValidatorPermit && uint32(v) != uid {
			vals = append(vals, v)
		}
	}
	stake := func(v int) uint64 {
		if v < len(mg.Stake) {
			return mg.Stake[v]
		}
		return 0
	}
	slices.SortStableFunc(vals, func(a, b int) int {
		switch {
		case stake(a) > stake(b):
			return -1
		case stake(a) < stake(b):
			return 1
		}
		return 0
	})
	vals = vals[:min(len(vals), maxScoreValidators)]
	out := make([]ValidatorScores, len(vals))
	type job struct{ vi, ei int }
	var jobs []job
	for vi, v := range vals {
		out[vi] = ValidatorScores{UID: uint32(v), Hotkey: addressText(mg.Neurons[v].Hotkey), Weights: make([]*Frac, len(held))}
		for ei, s := range held {
			// Only while the same hotkey held the validator's UID, and only
			// where it had a permit (others' rows are not counted).
			if v < len(s.UIDs) && s.UIDs[v].Permit && string(s.UIDs[v].Hotkey[:]) == string(mg.Neurons[v].Hotkey) {
				jobs = append(jobs, job{vi, ei})
			}
		}
	}
	errs := make([]error, len(jobs))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			row, err := e.weightRow(ctx, mg.Subnet.Netuid, out[j.vi].UID, held[j.ei].Height)
			if versionGone(err) {
				return // pruned by the node since the epoch was cached: no score shown
			}
			if err != nil {
				errs[i] = err
				return
			}
			if f, ok := weightShare(row, uid); ok {
				out[j.vi].Weights[j.ei] = &f
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("validator weights: %w", err)
		}
	}
	// Validators that never weighted this UID in the window say nothing.
	return slices.DeleteFunc(out, func(s ValidatorScores) bool {
		return !slices.ContainsFunc(s.Weights, func(f *Frac) bool { return f != nil })
	}), nil
}

// weightShare is uid's weight as a fraction of the whole row, as Yuma
// normalizes it; ok is false when the row does not name uid.
func weightShare(row *tx.WeightRow, uid uint32) (Frac, bool) {
	var sum, mine uint64
	found := false
	for i, u := range row.Uids {
		if i >= len(row.Values) {
			break
		}
		sum += uint64(row.Values[i])
		if u == uid {
			mine, found = uint64(row.Values[i]), true
		}
	}
	if !found || sum == 0 {
		return 0, found
	}
	return Frac(mine << 32 / sum), true // values are ≤ 2³², so no overflow
}

// maxWeightsShown is how many of a validator's weights its page lists.
const maxWeightsShown = 20

func (e *Explorer) weightsSet(ctx context.Context, p *NeuronPage, mg *tx.Metagraph) error {
	row, err := e.weightRow(ctx, p.Netuid, p.UID, 0)
	if err != nil {
		return fmt.Errorf("weights of uid %d: %w", p.UID, err)
	}
	var sum uint64
	for i := range row.Uids {
		if i < len(row.Values) {
			sum += uint64(row.Values[i])
		}
	}
	for i, u := range row.Uids {
		if i >= len(row.Values) {
			break
		}
		w := WeightGiven{UID: u, Value: row.Values[i]}
		if int(u) < len(mg.Neurons) {
			w.Hotkey = addressText(mg.Neurons[u].Hotkey)
		}
		if sum > 0 {
			w.Share = Frac(uint64(w.Value) << 32 / sum)
		}
		p.WeightsSet = append(p.WeightsSet, w)
	}
	p.WeightsTotal = len(p.WeightsSet)
	slices.SortStableFunc(p.WeightsSet, func(a, b WeightGiven) int {
		switch {
		case a.Value > b.Value:
			return -1
		case a.Value < b.Value:
			return 1
		}
		return 0
	})
	p.WeightsSet = p.WeightsSet[:min(len(p.WeightsSet), maxWeightsShown)]
	return nil
}

// gatewayTimeout bounds a gateway's answer: the page never waits longer
// for figures that are only a bonus.
const gatewayTimeout = 2 * time.Second

var gatewayClient = &http.Client{Timeout: gatewayTimeout}

// gatewayReport reads what a validator's gateway says of uid. It never
// fails: a gateway that is down or silent makes a report saying so.
func gatewayReport(ctx context.Context, base string, uid uint32, hotkey string) GatewayReport {
	rep := GatewayReport{URL: base}
	ctx, cancel := context.WithTimeout(ctx, gatewayTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/agora/miners", nil)
	if err != nil {
		rep.Error = "bad gateway URL"
		return rep
	}
	resp, err := gatewayClient.Do(req)
	if err != nil {
		rep.Error = "gateway unreachable"
		return rep
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		rep.Error = fmt.Sprintf("gateway answered %d", resp.StatusCode)
		return rep
	}
	var body struct {
		Data []struct {
			UID          *uint32  `json:"uid"`
			Hotkey       string   `json:"hotkey"`
			Score        *float64 `json:"score"`
			Checks       *uint64  `json:"checks"`
			FailedChecks *uint64  `json:"failed_checks"`
			TokensServed *uint64  `json:"tokens_served"`
		} `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&body); err != nil {
		rep.Error = "gateway answer unreadable"
		return rep
	}
	for _, m := range body.Data {
		// The hotkey too: the gateway may still list a UID's previous holder.
		if m.UID != nil && *m.UID == uid && (m.Hotkey == "" || m.Hotkey == hotkey) {
			rep.Reported = true
			rep.Score, rep.Checks, rep.FailedChecks, rep.TokensServed = m.Score, m.Checks, m.FailedChecks, m.TokensServed
			break
		}
	}
	return rep
}

func neuronCharts(p *NeuronPage) (results, emission, scores template.HTML) {
	frac := func(v float64) string { return fmt.Sprintf("%.2f", v) }
	rc := Chart{Title: "Results per epoch", XLabel: "block", YMax: 1.2, Format: frac} // room for the legend
	names := []string{"incentive", "consensus", "trust", "dividends"}
	for k, name := range names {
		s := Series{Name: name}
		for _, h := range p.History {
			v := [...]Frac{h.Incentive, h.Consensus, h.Trust, h.Dividends}[k]
			s.Points = append(s.Points, Point{X: float64(h.Height), Y: v.Float()})
		}
		rc.Series = append(rc.Series, s)
	}
	ec := Chart{Title: "Emission per epoch (AGR)", XLabel: "block"}
	es := Series{Name: "emission"}
	for _, h := range p.History {
		es.Points = append(es.Points, Point{X: float64(h.Height), Y: agrChartValue(h.Emission)})
	}
	ec.Series = []Series{es}
	sc := Chart{Title: "Weight validators gave this UID (share of their weights)", XLabel: "block", YMax: 1, Format: frac}
	for _, v := range p.Scores[:min(len(p.Scores), 5)] {
		s := Series{Name: fmt.Sprintf("by UID %d", v.UID)}
		for i, w := range v.Weights {
			if w != nil {
				s.Points = append(s.Points, Point{X: float64(p.History[i].Height), Y: w.Float()})
			}
		}
		sc.Series = append(sc.Series, s)
	}
	return rc.SVG(), ec.SVG(), sc.SVG()
}
