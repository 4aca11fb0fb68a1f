package explorer

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/client"
)

// Models and datasets as shared property: a model's shares earn a royalty
// on the revenue of every subnet pinning it, and part of that royalty goes
// on to the datasets it cites. These pages read the records through the
// SDK (client/royalty.go) only.

// royaltyRoutes registers the model and dataset pages.
func (e *Explorer) royaltyRoutes() {
	e.page("GET /models", "models", e.loadModels)
	e.page("GET /models/{id}", "model", e.loadModel)
	e.page("GET /datasets", "datasets", e.loadDatasets)
	e.page("GET /datasets/{root}", "dataset", e.loadDataset)
}

// modelIDParam parses the {id} path segment: the sha256 of the GGUF file
// in lowercase hex, exactly as the chain keys it.
func modelIDParam(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if _, err := tx.ModelIDBytes(id); err != nil {
		return "", BadRequestf("%q is not a model id: a model id is the sha256 of its GGUF file in 64 lowercase hex digits", id)
	}
	return id, nil
}

// datasetRootParam parses the {root} path segment (the Merkle root in hex).
func datasetRootParam(r *http.Request) ([]byte, error) {
	s := r.PathValue("root")
	root, err := tx.ParseDatasetRoot(s)
	if err != nil {
		return nil, BadRequestf("%q is not a dataset root: a dataset is named by its Merkle root, 64 hex digits", s)
	}
	return root, nil
}

// holderParam reads the optional ?holder= lookup; ok is false when absent.
func holderParam(r *http.Request) (address.Address, bool, error) {
	s := r.URL.Query().Get("holder")
	if strings.TrimSpace(s) == "" {
		return address.Address{}, false, nil
	}
	a, err := parseAddress(s)
	return a, err == nil, err
}

// royaltyNotFound turns the SDK's "no such model/dataset" into the page's 404.
func royaltyNotFound(err error) error {
	if errors.Is(err, client.ErrNoModel) || errors.Is(err, client.ErrNoDataset) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}

// Pool is a model's or dataset's royalty pool at the height it was read.
type Pool struct {
	// Shares is the share supply (a dataset: its contributors' total weight).
	Shares uint64 `json:"shares"`
	// Earned is all royalty ever credited to the pool; Claimed what holders
	// took out; Held what the pool holds now (streaming, unclaimed, dust).
	Earned  uint64 `json:"earned"`
	Claimed uint64 `json:"claimed"`
	Held    uint64 `json:"held"`
	// Streaming is credited royalty not yet released to holders; it is
	// released linearly until StreamEnd.
	Streaming uint64 `json:"streaming"`
	StreamEnd uint64 `json:"stream_end"`
}

// poolAt reads p as of height: the stream is advanced on a copy, so
// Streaming is what is still to be released then, not at the pool's last
// write. A pool that cannot be advanced (a corrupt index) is shown as
// stored rather than failing the page.
func poolAt(p *tx.SharePool, height uint64) Pool {
	if p == nil {
		return Pool{}
	}
	c := proto.Clone(p).(*tx.SharePool)
	if err := c.Advance(height); err != nil {
		c = p
	}
	v := Pool{Shares: c.Shares, Earned: c.Earned, Claimed: c.Claimed, Held: c.Held, Streaming: c.Streaming}
	if c.Streaming > 0 {
		v.StreamEnd = c.StreamEnd
	}
	return v
}

// Link is an off-chain URL a record names. Href is set only for http and
// https: anything else (javascript:, data:) stays text.
type Link struct {
	URL  string `json:"url"`
	Href string `json:"-"`
}

func linksOf(urls []string) []Link {
	out := make([]Link, 0, len(urls))
	for _, s := range urls {
		l := Link{URL: s}
		if u, err := url.Parse(s); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
			l.Href = s
		}
		out = append(out, l)
	}
	return out
}

// fracOf is a/b as a Q32.32 fraction of one (0 when b is 0), rounded down.
func fracOf(a, b uint64) Frac {
	if b == 0 {
		return 0
	}
	f, err := agr.MulDiv(a, 1<<32, b)
	if err != nil {
		return 0 // a > b: not a fraction of one, and never so on chain
	}
	return Frac(f)
}

// Holder is what one address has in a model or dataset (the ?holder= lookup).
type Holder struct {
	Address string `json:"address"`
	Height  int64  `json:"height"` // the holding and its pool were read at this height
	Shares  uint64 `json:"shares"` // a dataset: the contributor's weight
	// Share is Shares over the pool's shares.
	Share Frac `json:"share"`
	// Locked shares are on sale in the model's open offering.
	Locked uint64 `json:"locked"`
	// Claimable is what a claim would pay now: settled and not yet claimed,
	// plus what the pool released since the holding last settled.
	Claimable uint64 `json:"claimable"`
	Claimed   uint64 `json:"claimed"`
}

func holderOf(a address.Address, p *client.Position) *Holder {
	h := &Holder{Address: a.String(), Height: p.Height, Claimable: p.Claimable}
	if p.Holding != nil {
		h.Shares, h.Locked, h.Claimed = p.Holding.Shares, p.Holding.Locked, p.Holding.Claimed
	}
	if p.Pool != nil {
		h.Share = fracOf(h.Shares, p.Pool.Shares)
	}
	return h
}

// ModelSummary is one model in the list (and the head of its page).
type ModelSummary struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Owner string `json:"owner"`
	// RoyaltyBps of the revenue of every subnet pinning the model goes to
	// it; DataBps of that royalty goes on to the datasets it cites.
	RoyaltyBps uint32 `json:"royalty_bps"`
	DataBps    uint32 `json:"data_bps"`
	Shares     uint64 `json:"shares"`
	// Earned, Claimed and Held are the shareholders' pool; DataPaid is what
	// the model's royalty passed on to its datasets.
	Earned       uint64   `json:"earned"`
	Claimed      uint64   `json:"claimed"`
	Held         uint64   `json:"held"`
	DataPaid     uint64   `json:"data_paid"`
	RegisteredAt uint64   `json:"registered_at"`
	Subnets      []uint32 `json:"subnets"` // netuids pinning the model
}

// RoyaltyPct and DataPct are the royalty terms as percentages.
func (m ModelSummary) RoyaltyPct() string { return percent(uint64(m.RoyaltyBps), 10_000) }

func (m ModelSummary) DataPct() string { return percent(uint64(m.DataBps), 10_000) }

func modelSummaryOf(m *tx.Model, pinning map[string][]uint32) ModelSummary {
	p := m.GetPool()
	s := ModelSummary{ID: m.Id, Name: m.Name, Owner: addressText(m.Owner), RoyaltyBps: m.RoyaltyBps, DataBps: m.DataBps,
		Shares: p.GetShares(), Earned: p.GetEarned(), Claimed: p.GetClaimed(), Held: p.GetHeld(), DataPaid: m.DataPaid,
		RegisteredAt: m.RegisteredAt, Subnets: pinning[m.Id]}
	if s.Subnets == nil {
		s.Subnets = []uint32{}
	}
	return s
}

// pinningSubnets maps each pinned model id to the subnets pinning it, in
// netuid order.
func pinningSubnets(subs []*tx.Subnet) map[string][]uint32 {
	out := map[string][]uint32{}
	for _, s := range subs {
		if id := s.GetParams().GetModelId(); id != "" {
			out[id] = append(out[id], s.Netuid)
		}
	}
	return out
}

// ModelsPage is /models.
type ModelsPage struct {
	Height int64          `json:"height"`
	Models []ModelSummary `json:"models"`
}

func (e *Explorer) loadModels(r *http.Request) (any, error) {
	ctx := r.Context()
	l, err := e.cfg.Chain.Models(ctx)
	if err != nil {
		return nil, err
	}
	subs, err := e.cfg.Chain.Subnets(ctx)
	if err != nil {
		return nil, err
	}
	pin := pinningSubnets(subs)
	p := &ModelsPage{Height: l.Height, Models: make([]ModelSummary, 0, len(l.Models))}
	for _, m := range l.Models {
		p.Models = append(p.Models, modelSummaryOf(m, pin))
	}
	return p, nil
}

// CitationRow is one dataset a model cites.
type CitationRow struct {
	Dataset string `json:"dataset"` // its root, hex
	Name    string `json:"name"`    // "" when the dataset could not be read
	Weight  uint64 `json:"weight"`
	// Share is this dataset's part of the model's data royalty (its weight
	// over the citations' total).
	Share Frac `json:"share"`
}

// OfferingView is a model's open offering.
type OfferingView struct {
	Seller    string `json:"seller"`
	Shares    uint64 `json:"shares"`
	Sold      uint64 `json:"sold"`
	Price     uint64 `json:"price"`      // the first share's price
	PriceStep uint64 `json:"price_step"` // added per share sold
	// PriceNow is what the next share costs: price + sold × price_step.
	// It saturates at the largest amount when that overflows (no one could
	// pay it).
	PriceNow  uint64 `json:"price_now"`
	MinShares uint64 `json:"min_shares"`
	EndHeight uint64 `json:"end_height"`
	OpenedAt  uint64 `json:"opened_at"`
	Raised    uint64 `json:"raised"` // escrowed until the offering closes
	Buyers    int    `json:"buyers"`
}

func offeringViewOf(o *tx.Offering) *OfferingView {
	v := &OfferingView{Seller: addressText(o.Seller), Shares: o.Shares, Sold: o.Sold, Price: o.Price, PriceStep: o.PriceStep,
		MinShares: o.MinShares, EndHeight: o.EndHeight, OpenedAt: o.OpenedAt, Raised: o.Raised, Buyers: len(o.Purchases)}
	now, err := tx.OfferingCost(o.Price, o.PriceStep, o.Sold, 1)
	if err != nil {
		now = ^uint64(0)
	}
	v.PriceNow = now
	return v
}

// MinReached reports whether the offering has sold its minimum: closing
// now would deliver the shares rather than refund the buyers.
func (o *OfferingView) MinReached() bool { return o.Sold >= o.MinShares }

// SubnetRef names a subnet.
type SubnetRef struct {
	Netuid uint32 `json:"netuid"`
	Name   string `json:"name"`
}

// ModelPage is /models/{id}.
type ModelPage struct {
	ModelSummary
	Height    int64         `json:"height"`
	License   string        `json:"license"`
	URLs      []Link        `json:"urls"`
	Seq       uint64        `json:"seq"` // registration order, from 1
	Pool      Pool          `json:"pool"`
	Citations []CitationRow `json:"citations"`
	// CitationWeight is the citations' total weight.
	CitationWeight uint64        `json:"citation_weight"`
	Offering       *OfferingView `json:"offering"` // null: none open
	PinnedBy       []SubnetRef   `json:"pinned_by"`
	Holder         *Holder       `json:"holder,omitempty"` // the ?holder= lookup
}

func (e *Explorer) loadModel(r *http.Request) (any, error) {
	id, err := modelIDParam(r)
	if err != nil {
		return nil, err
	}
	holder, lookup, err := holderParam(r)
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	// The height first: the records read after it are at least as new, and
	// advancing a pool to an older height leaves it as stored.
	h, err := e.cfg.Chain.Height(ctx)
	if err != nil {
		return nil, err
	}
	m, err := e.cfg.Chain.Model(ctx, id, false)
	if err != nil {
		return nil, royaltyNotFound(err)
	}
	subs, err := e.cfg.Chain.Subnets(ctx)
	if err != nil {
		return nil, err
	}
	p := &ModelPage{ModelSummary: modelSummaryOf(m, pinningSubnets(subs)), Height: h, License: m.License, URLs: linksOf(m.Urls),
		Seq: m.Seq, Pool: poolAt(m.Pool, uint64(h)), Citations: []CitationRow{}, PinnedBy: []SubnetRef{}}
	for _, s := range subs {
		if s.GetParams().GetModelId() == id {
			p.PinnedBy = append(p.PinnedBy, SubnetRef{Netuid: s.Netuid, Name: s.Name})
		}
	}
	for _, c := range m.Citations {
		p.CitationWeight = agr.SaturatingAdd(p.CitationWeight, c.Weight)
	}
	// At most tx.MaxCitations reads, for the datasets' names.
	for _, c := range m.Citations {
		row := CitationRow{Dataset: hex.EncodeToString(c.Dataset), Weight: c.Weight, Share: fracOf(c.Weight, p.CitationWeight)}
		if d, err := e.cfg.Chain.Dataset(ctx, c.Dataset, false); err == nil {
			row.Name = d.Name
		} else if !errors.Is(err, client.ErrNoDataset) {
			return nil, err
		}
		p.Citations = append(p.Citations, row)
	}
	switch o, err := e.cfg.Chain.Offering(ctx, id, false); {
	case err == nil:
		p.Offering = offeringViewOf(o)
	case !errors.Is(err, client.ErrNoOffering):
		return nil, err
	}
	if lookup {
		pos, err := e.cfg.Chain.ModelPosition(ctx, id, holder, false)
		if err != nil {
			return nil, royaltyNotFound(err)
		}
		p.Holder = holderOf(holder, pos)
	}
	return p, nil
}

// DatasetSummary is one dataset in the list (and the head of its page).
type DatasetSummary struct {
	Root         string `json:"root"` // hex
	Name         string `json:"name"`
	Owner        string `json:"owner"`
	Files        uint64 `json:"files"`
	Size         uint64 `json:"size"` // bytes
	Contributors uint64 `json:"contributors"`
	// TotalWeight is the contributors' weight credited so far (the pool's shares).
	TotalWeight  uint64 `json:"total_weight"`
	Earned       uint64 `json:"earned"`
	Claimed      uint64 `json:"claimed"`
	Held         uint64 `json:"held"`
	RegisteredAt uint64 `json:"registered_at"`
	CitedBy      int    `json:"cited_by"` // models citing it
}

func datasetSummaryOf(d *tx.Dataset, citedBy int) DatasetSummary {
	p := d.GetPool()
	return DatasetSummary{Root: hex.EncodeToString(d.Root), Name: d.Name, Owner: addressText(d.Owner), Files: d.Files, Size: d.Size,
		Contributors: d.Contributors, TotalWeight: p.GetShares(), Earned: p.GetEarned(), Claimed: p.GetClaimed(), Held: p.GetHeld(),
		RegisteredAt: d.RegisteredAt, CitedBy: citedBy}
}

// SizeText is the size in binary units ("1.5 MiB").
func (d DatasetSummary) SizeText() string { return byteSize(d.Size) }

func byteSize(n uint64) string {
	const unit = 1024
	if n < unit {
		return plural(n, "byte")
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	// Whole and tenths in integers: no float touches a chain value.
	whole, tenths := n/div, (n%div)*10/div
	return fmt.Sprintf("%d.%d %ciB", whole, tenths, "KMGTPE"[exp])
}

// DatasetsPage is /datasets.
type DatasetsPage struct {
	Height   int64            `json:"height"`
	Datasets []DatasetSummary `json:"datasets"`
}

func (e *Explorer) loadDatasets(r *http.Request) (any, error) {
	ctx := r.Context()
	l, err := e.cfg.Chain.Datasets(ctx)
	if err != nil {
		return nil, err
	}
	models, err := e.cfg.Chain.Models(ctx)
	if err != nil {
		return nil, err
	}
	cited := map[string]int{}
	for _, m := range models.Models {
		for _, c := range m.Citations {
			cited[string(c.Dataset)]++
		}
	}
	p := &DatasetsPage{Height: l.Height, Datasets: make([]DatasetSummary, 0, len(l.Datasets))}
	for _, d := range l.Datasets {
		p.Datasets = append(p.Datasets, datasetSummaryOf(d, cited[string(d.Root)]))
	}
	return p, nil
}

// CitingModel is a model citing a dataset.
type CitingModel struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	RoyaltyBps uint32 `json:"royalty_bps"`
	DataBps    uint32 `json:"data_bps"`
	Weight     uint64 `json:"weight"`
	// Share is this dataset's part of the model's data royalty.
	Share Frac `json:"share"`
}

// RoyaltyPct and DataPct are the citing model's royalty terms as percentages.
func (m CitingModel) RoyaltyPct() string { return percent(uint64(m.RoyaltyBps), 10_000) }

func (m CitingModel) DataPct() string { return percent(uint64(m.DataBps), 10_000) }

// DatasetPage is /datasets/{root}.
type DatasetPage struct {
	DatasetSummary
	Height  int64         `json:"height"`
	License string        `json:"license"`
	URLs    []Link        `json:"urls"`
	Seq     uint64        `json:"seq"`
	Pool    Pool          `json:"pool"`
	Models  []CitingModel `json:"models"`           // models citing it, in registration order
	Holder  *Holder       `json:"holder,omitempty"` // the ?holder= lookup
}

func (e *Explorer) loadDataset(r *http.Request) (any, error) {
	root, err := datasetRootParam(r)
	if err != nil {
		return nil, err
	}
	holder, lookup, err := holderParam(r)
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	h, err := e.cfg.Chain.Height(ctx)
	if err != nil {
		return nil, err
	}
	d, err := e.cfg.Chain.Dataset(ctx, root, false)
	if err != nil {
		return nil, royaltyNotFound(err)
	}
	models, err := e.cfg.Chain.Models(ctx)
	if err != nil {
		return nil, err
	}
	var citing []CitingModel
	for _, m := range models.Models {
		var total uint64
		for _, c := range m.Citations {
			total = agr.SaturatingAdd(total, c.Weight)
		}
		for _, c := range m.Citations {
			if string(c.Dataset) == string(root) {
				citing = append(citing, CitingModel{ID: m.Id, Name: m.Name, RoyaltyBps: m.RoyaltyBps, DataBps: m.DataBps,
					Weight: c.Weight, Share: fracOf(c.Weight, total)})
			}
		}
	}
	if citing == nil {
		citing = []CitingModel{}
	}
	p := &DatasetPage{DatasetSummary: datasetSummaryOf(d, len(citing)), Height: h, License: d.License, URLs: linksOf(d.Urls),
		Seq: d.Seq, Pool: poolAt(d.Pool, uint64(h)), Models: citing}
	if lookup {
		pos, err := e.cfg.Chain.DatasetPosition(ctx, root, holder, false)
		if err != nil {
			return nil, royaltyNotFound(err)
		}
		p.Holder = holderOf(holder, pos)
	}
	return p, nil
}
