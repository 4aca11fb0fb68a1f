package royalty

import (
	"fmt"
	"slices"
	"strconv"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/subnet"
	"github.com/agoranet/agora/chain/tx"
)

// MaxOfferingsPerBlock bounds the offerings that close at one height, so
// the end-of-block work of closing them (each up to tx.MaxOfferPurchase
// deliveries or refunds) is bounded too; an owner picks another end height.
const MaxOfferingsPerBlock = 64

// MaxOfferingBlocks bounds how far ahead an offering may end.
const MaxOfferingBlocks = subnet.MaxPeriod

func getOffering(c *subnet.Ctx, id []byte) (*tx.Offering, bool, error) {
	o := &tx.Offering{}
	ok, err := get(c.KV, tx.OfferingKey(id), o)
	return o, ok, err
}

// Offer opens an initial model offering of the owner's shares. The shares
// are locked (they still earn for the owner) until it closes.
func Offer(c *subnet.Ctx, seller address.Address, o *tx.MsgModelOffer) ([]abci.Event, error) {
	m, id, err := GetModel(c.KV, o.ModelId)
	if err != nil {
		return nil, err
	}
	if owner, _ := address.FromBytes(m.Owner); owner != seller {
		return nil, fmt.Errorf("%w: only model %s's owner may offer its shares", subnet.ErrUnauthorized, o.ModelId)
	}
	if _, open, err := getOffering(c, id); err != nil {
		return nil, err
	} else if open {
		return nil, fmt.Errorf("model %s already has an open offering: %w", o.ModelId, subnet.ErrExists)
	}
	if o.EndHeight <= c.Height || o.EndHeight-c.Height > MaxOfferingBlocks {
		return nil, fmt.Errorf("%w: end height %d must be after %d and within %d blocks", subnet.ErrInvalid, o.EndHeight, c.Height, uint64(MaxOfferingBlocks))
	}
	// Pricing every share up front means no later purchase can overflow.
	if _, err := tx.OfferingCost(o.Price, o.PriceStep, 0, o.Shares); err != nil {
		return nil, fmt.Errorf("%w: %v", subnet.ErrInvalid, err)
	}
	key := tx.ModelHoldingKey(id, seller)
	h, err := getHolding(c.KV, key)
	if err != nil {
		return nil, err
	}
	if free := h.Shares - min(h.Locked, h.Shares); o.Shares > free {
		return nil, fmt.Errorf("%w: %d transferable shares, offering %d", bank.ErrInsufficientFunds, free, o.Shares)
	}
	queue := &tx.ModelIDList{}
	if _, err := get(c.KV, tx.OfferingQueueKey(o.EndHeight), queue); err != nil {
		return nil, err
	}
	if len(queue.Ids) >= MaxOfferingsPerBlock {
		return nil, fmt.Errorf("%w: %d offerings already close at block %d", subnet.ErrFull, len(queue.Ids), o.EndHeight)
	}
	queue.Ids = append(queue.Ids, o.ModelId)
	h.Locked += o.Shares // ≤ Shares, checked above
	offering := &tx.Offering{ModelId: o.ModelId, Seller: seller[:], Shares: o.Shares, Price: o.Price, PriceStep: o.PriceStep,
		MinShares: o.MinShares, EndHeight: o.EndHeight, OpenedAt: c.Height}
	if err := putHolding(c.KV, key, h); err != nil {
		return nil, err
	}
	if err := put(c.KV, tx.OfferingQueueKey(o.EndHeight), queue); err != nil {
		return nil, err
	}
	if err := put(c.KV, tx.OfferingKey(id), offering); err != nil {
		return nil, err
	}
	return []abci.Event{{Type: "model_offer", Attributes: []abci.EventAttribute{
		{Key: "model_id", Value: o.ModelId, Index: true},
		{Key: "shares", Value: strconv.FormatUint(o.Shares, 10)},
		{Key: "price", Value: strconv.FormatUint(o.Price, 10)},
		{Key: "end_height", Value: strconv.FormatUint(o.EndHeight, 10)},
	}}}, nil
}

// Buy pays for shares in an open offering. The payment is escrowed until
// the offering closes; a purchase that sells the offering out closes it
// at once.
func Buy(c *subnet.Ctx, buyer address.Address, b *tx.MsgModelBuy) ([]abci.Event, error) {
	id, err := tx.ModelIDBytes(b.ModelId)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", subnet.ErrInvalid, err)
	}
	o, open, err := getOffering(c, id)
	if err != nil {
		return nil, err
	}
	if !open || c.Height > o.EndHeight {
		return nil, fmt.Errorf("model %s: no open offering: %w", b.ModelId, subnet.ErrNotFound)
	}
	if seller, _ := address.FromBytes(o.Seller); seller == buyer {
		return nil, fmt.Errorf("%w: the seller cannot buy its own offering", subnet.ErrInvalid)
	}
	if left := o.Shares - o.Sold; b.Shares > left {
		return nil, fmt.Errorf("%w: %d shares left in the offering, asked for %d", subnet.ErrInvalid, left, b.Shares)
	}
	cost, err := tx.OfferingCost(o.Price, o.PriceStep, o.Sold, b.Shares)
	if err != nil {
		return nil, err
	}
	if b.MaxCost != 0 && cost > b.MaxCost {
		return nil, fmt.Errorf("%w: %d shares cost %d, max_cost %d", subnet.ErrPriceMoved, b.Shares, cost, b.MaxCost)
	}
	i := slices.IndexFunc(o.Purchases, func(p *tx.Purchase) bool { return string(p.Buyer) == string(buyer[:]) })
	if i < 0 {
		if len(o.Purchases) >= tx.MaxOfferPurchase {
			return nil, fmt.Errorf("%w: the offering has its %d buyers", subnet.ErrFull, tx.MaxOfferPurchase)
		}
		o.Purchases = append(o.Purchases, &tx.Purchase{Buyer: buyer[:]})
		i = len(o.Purchases) - 1
	}
	if err := bank.Debit(c.KV, buyer, cost); err != nil {
		return nil, err
	}
	p := o.Purchases[i]
	// Each sum is bounded by the whole offering's cost, priced in Offer.
	p.Shares, p.Paid = p.Shares+b.Shares, p.Paid+cost
	o.Sold, o.Raised = o.Sold+b.Shares, o.Raised+cost
	if err := bank.UpdateSupply(c.KV, func(s *tx.Supply) (err error) {
		s.OfferingEscrow, err = bank.Grow("supply offering_escrow", s.OfferingEscrow, cost)
		return err
	}); err != nil {
		return nil, err
	}
	events := []abci.Event{{Type: "model_buy", Attributes: []abci.EventAttribute{
		{Key: "model_id", Value: b.ModelId, Index: true},
		{Key: "buyer", Value: buyer.String(), Index: true},
		{Key: "shares", Value: strconv.FormatUint(b.Shares, 10)},
		{Key: "cost", Value: strconv.FormatUint(cost, 10)},
	}}}
	if o.Sold == o.Shares {
		ev, err := closeOffering(c, id, o)
		if err != nil {
			return nil, err
		}
		return append(events, ev), nil
	}
	return events, put(c.KV, tx.OfferingKey(id), o)
}

// closeOffering settles an offering: if it sold at least its minimum,
// every buyer receives its shares and the seller the proceeds; otherwise
// every buyer gets back exactly what it paid. Either way the unsold shares
// are unlocked and the offering removed.
func closeOffering(c *subnet.Ctx, id []byte, o *tx.Offering) (abci.Event, error) {
	m, _, err := GetModel(c.KV, o.ModelId)
	if err != nil {
		return abci.Event{}, err
	}
	seller, err := address.FromBytes(o.Seller)
	if err != nil {
		return abci.Event{}, fmt.Errorf("%w: offering seller: %v", bank.ErrInvariant, err)
	}
	success := o.Sold > 0 && o.Sold >= o.MinShares
	for _, p := range o.Purchases {
		buyer, err := address.FromBytes(p.Buyer)
		if err != nil {
			return abci.Event{}, fmt.Errorf("%w: offering buyer: %v", bank.ErrInvariant, err)
		}
		if success {
			err = moveShares(c, m, id, seller, buyer, p.Shares, true)
		} else {
			err = bank.Credit(c.KV, buyer, p.Paid)
		}
		if err != nil {
			return abci.Event{}, err
		}
	}
	key := tx.ModelHoldingKey(id, seller)
	h, err := getHolding(c.KV, key)
	if err != nil {
		return abci.Event{}, err
	}
	// What is still locked by this offering is its unsold part (all of it
	// when refunded): delivered shares left the lock in moveShares.
	unlock := o.Shares
	if success {
		unlock = o.Shares - o.Sold
	}
	if h.Locked, err = bank.Take("offering lock", h.Locked, unlock); err != nil {
		return abci.Event{}, err
	}
	if err := putHolding(c.KV, key, h); err != nil {
		return abci.Event{}, err
	}
	if success {
		if err := bank.Credit(c.KV, seller, o.Raised); err != nil {
			return abci.Event{}, err
		}
	}
	if err := bank.UpdateSupply(c.KV, func(s *tx.Supply) (err error) {
		s.OfferingEscrow, err = bank.Take("supply offering_escrow", s.OfferingEscrow, o.Raised)
		return err
	}); err != nil {
		return abci.Event{}, err
	}
	if err := put(c.KV, tx.ModelKey(id), m); err != nil {
		return abci.Event{}, err
	}
	if err := c.KV.Delete(tx.OfferingKey(id)); err != nil {
		return abci.Event{}, err
	}
	outcome := "refunded"
	if success {
		outcome = "sold"
	}
	return abci.Event{Type: "offering_close", Attributes: []abci.EventAttribute{
		{Key: "model_id", Value: o.ModelId, Index: true},
		{Key: "outcome", Value: outcome},
		{Key: "sold", Value: strconv.FormatUint(o.Sold, 10)},
		{Key: "raised", Value: strconv.FormatUint(o.Raised, 10)},
		{Key: "buyers", Value: strconv.Itoa(len(o.Purchases))},
	}}, nil
}

// EndBlock closes the offerings whose end height is this block. An
// offering that sold out earlier (or was replaced by a later one with
// another end) is no longer there under this height and is skipped.
func EndBlock(c *subnet.Ctx) ([]abci.Event, error) {
	key := tx.OfferingQueueKey(c.Height)
	queue := &tx.ModelIDList{}
	ok, err := get(c.KV, key, queue)
	if err != nil || !ok {
		return nil, err
	}
	var events []abci.Event
	for _, modelID := range queue.Ids {
		id, err := tx.ModelIDBytes(modelID)
		if err != nil {
			return nil, fmt.Errorf("%w: offering queue: %v", bank.ErrInvariant, err)
		}
		o, open, err := getOffering(c, id)
		if err != nil {
			return nil, err
		}
		if !open || o.EndHeight != c.Height {
			continue
		}
		ev, err := closeOffering(c, id, o)
		if err != nil {
			return nil, fmt.Errorf("close offering of model %s: %w", modelID, err)
		}
		events = append(events, ev)
	}
	return events, c.KV.Delete(key)
}
