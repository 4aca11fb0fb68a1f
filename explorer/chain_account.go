package explorer

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/client"
)

// The account page's reads are bounded whatever the account's history:
// one page of each transaction search, a fixed window of its sent
// transactions scanned for stakes, and a fixed number of channels and
// stake records.
const (
	accountTxsPerPage = 20
	// stakeScanTxs is how many of the account's newest stake transactions
	// (found by their stake_add.coldkey event) are read for the hotkeys it
	// staked to.
	stakeScanTxs     = 500
	stakeScanPerPage = 100
	// maxStakes bounds the (subnet, hotkey) pairs whose records are read.
	maxStakes = 64
	// maxChannels bounds the channels listed per role (payer, payee).
	maxChannels = 25
)

// accountData is GET /accounts/{addr}.
type accountData struct {
	Address     string           `json:"address"`
	Balance     uint64           `json:"balance"`
	Nonce       uint64           `json:"nonce"`
	Staked      uint64           `json:"staked"` // Σ stakes[].stake
	Stakes      []accountStake   `json:"stakes"`
	Channels    []accountChannel `json:"channels"`
	Txs         []accountTx      `json:"txs"`
	OlderBefore int64            `json:"older_before,omitempty"` // ?before= of the next page of txs
	Before      int64            `json:"before,omitempty"`       // this page's ?before= (0: newest)
	// StakeScanLimited is set when the account sent more transactions than
	// the stake scan reads: delegations made before them are not listed.
	StakeScanLimited bool `json:"stake_scan_limited,omitempty"`
}

// OlderURL links the next page of transactions.
func (a *accountData) OlderURL() string {
	if a.OlderBefore == 0 {
		return ""
	}
	return fmt.Sprintf("/accounts/%s?before=%d", a.Address, a.OlderBefore)
}

// accountStake is the account's stake in one hotkey's pool on one subnet.
type accountStake struct {
	Netuid uint32 `json:"netuid"`
	Hotkey string `json:"hotkey"`
	// UID is the hotkey's UID on the subnet (-1: not registered now).
	UID int `json:"uid"`
	// Owned: the account is the hotkey's coldkey (it registered it).
	Owned  bool   `json:"owned"`
	Shares uint64 `json:"shares"`
	Stake  uint64 `json:"stake"` // what the shares are worth now
	// HotkeyStake is the whole pool: the account's and its delegators'.
	HotkeyStake uint64 `json:"hotkey_stake"`
}

// accountChannel is a payment channel the account pays or is paid by.
type accountChannel struct {
	ID           uint64 `json:"id"`
	Role         string `json:"role"` // payer or payee
	Counterparty string `json:"counterparty"`
	Netuid       uint32 `json:"netuid"`
	Open         bool   `json:"open"` // false: closed (its record is gone)
	Deposit      uint64 `json:"deposit,omitempty"`
	Claimed      uint64 `json:"claimed,omitempty"`
	ExpiryHeight uint64 `json:"expiry_height,omitempty"`
	OpenedHeight int64  `json:"opened_height"`
}

// accountTx is one of the account's transactions.
type accountTx struct {
	Hash   string `json:"hash"`
	Height int64  `json:"height"`
	Index  uint32 `json:"index"`
	// Sent: the account signed it; Received: it was a transfer's recipient.
	Sent     bool     `json:"sent"`
	Received bool     `json:"received"`
	Types    []string `json:"types"` // its messages' types, as in tx.proto
	// In and Out are what transfers in it moved to and from the account.
	In       uint64 `json:"in"`
	Out      uint64 `json:"out"`
	Fee      uint64 `json:"fee"`
	Code     uint32 `json:"code"`
	CodeName string `json:"code_name"`
	// Counterparty is the other side of its first transfer, if any.
	Counterparty string `json:"counterparty,omitempty"`
}

// TypesText lists the message types in words.
func (t accountTx) TypesText() string {
	if len(t.Types) == 0 {
		return "—"
	}
	out := make([]string, len(t.Types))
	for i, ty := range t.Types {
		out[i] = txMsg{Type: ty}.Label()
	}
	return strings.Join(out, ", ")
}

// Direction is how the account took part ("sent", "received", "sent to self").
func (t accountTx) Direction() string {
	switch {
	case t.Sent && t.Received:
		return "to self"
	case t.Received:
		return "received"
	}
	return "sent"
}

func (e *Explorer) loadAccount(r *http.Request) (any, error) {
	addr, err := parseAddress(r.PathValue("addr"))
	if err != nil {
		return nil, err
	}
	var before int64
	if s := r.URL.Query().Get("before"); s != "" {
		if before, err = strconv.ParseInt(s, 10, 64); err != nil || before < 2 {
			return nil, BadRequestf("?before=%q: give a block height of 2 or more; the page lists the transactions below it", s)
		}
	}
	ctx, c := r.Context(), e.cfg.Chain
	d := &accountData{Address: addr.String(), Before: before}
	// Lists are [] in JSON when empty, never null.
	var (
		acc      *tx.Account
		stakes   []accountStake
		channels []accountChannel
		txs      []accountTx
		older    int64
		limited  bool
	)
	err = chainParallel(
		func() (err error) { acc, _, err = c.Account(ctx, addr, false); return },
		func() (err error) { txs, older, err = accountTxs(ctx, c, addr, before); return },
		func() (err error) { stakes, limited, err = accountStakes(ctx, c, addr); return },
		func() (err error) { channels, err = accountChannels(ctx, c, addr); return },
	)
	if err != nil {
		return nil, err
	}
	d.Balance, d.Nonce = acc.Balance, acc.Nonce
	d.Stakes, d.StakeScanLimited = nonNil(stakes), limited
	for _, s := range stakes {
		d.Staked += s.Stake
	}
	d.Channels, d.Txs, d.OlderBefore = nonNil(channels), nonNil(txs), older
	return d, nil
}

// parseAddress reads a bech32 account address from a path or a search.
func parseAddress(s string) (address.Address, error) {
	a, err := address.Parse(strings.TrimSpace(s))
	if err != nil {
		return a, BadRequestf("%q is not an Agora address: addresses are bech32 and start with agora1 (%v)", s, err)
	}
	return a, nil
}

// accountTxs is one page of the account's transactions, newest first: those
// it signed and those that paid it, merged. Both searches read heights
// below before (0: all); a page ends at a height both searches covered
// completely, so paging never skips a transaction.
func accountTxs(ctx context.Context, c *client.Client, addr address.Address, before int64) ([]accountTx, int64, error) {
	a := addr.String()
	queries := []string{fmt.Sprintf("tx.signer='%s'", a), fmt.Sprintf("transfer.recipient='%s'", a)}
	if before > 0 {
		for i := range queries {
			queries[i] += fmt.Sprintf(" AND tx.height<%d", before)
		}
	}
	found := make([]*client.ResultTxSearch, len(queries))
	var fns []func() error
	for i, q := range queries {
		fns = append(fns, func() (err error) {
			found[i], err = c.TxSearch(ctx, q, 1, accountTxsPerPage, true)
			return err
		})
	}
	if err := chainParallel(fns...); err != nil {
		return nil, 0, err
	}
	// frontier: the highest height a full page stopped at. Heights above it
	// are complete in both searches; at or below it one may have more.
	var frontier int64
	byHash := map[string]*accountTx{}
	for _, res := range found {
		for _, rt := range res.Txs {
			h := fmt.Sprintf("%X", []byte(rt.Hash))
			if _, ok := byHash[h]; !ok {
				byHash[h] = summarizeAccountTx(rt, a)
			}
		}
		if len(res.Txs) == accountTxsPerPage && res.TotalCount > accountTxsPerPage {
			frontier = max(frontier, res.Txs[len(res.Txs)-1].Height)
		}
	}
	all := make([]accountTx, 0, len(byHash))
	for _, t := range byHash {
		all = append(all, *t)
	}
	slices.SortFunc(all, func(x, y accountTx) int {
		return cmp.Or(cmp.Compare(y.Height, x.Height), cmp.Compare(y.Index, x.Index))
	})
	if frontier == 0 {
		return all, 0, nil
	}
	var page []accountTx
	for _, t := range all {
		if t.Height > frontier {
			page = append(page, t)
		}
	}
	if len(page) > 0 {
		return page, frontier + 1, nil
	}
	// A page's worth at one height: this page is that whole block's
	// transactions of the account (up to the search's limit of 100 each).
	var fns2 []func() error
	for i, q := range queries {
		q = fmt.Sprintf("%s AND tx.height=%d", strings.Split(q, " AND ")[0], frontier)
		fns2 = append(fns2, func() (err error) {
			found[i], err = c.TxSearch(ctx, q, 1, maxTxSearchPage, true)
			return err
		})
	}
	if err := chainParallel(fns2...); err != nil {
		return nil, 0, err
	}
	clear(byHash)
	page = page[:0]
	for _, res := range found {
		for _, rt := range res.Txs {
			h := fmt.Sprintf("%X", []byte(rt.Hash))
			if _, ok := byHash[h]; !ok {
				byHash[h] = summarizeAccountTx(rt, a)
				page = append(page, *byHash[h])
			}
		}
	}
	slices.SortFunc(page, func(x, y accountTx) int { return cmp.Compare(y.Index, x.Index) })
	var older int64
	if frontier > 1 {
		older = frontier
	}
	return page, older, nil
}

// maxTxSearchPage is CometBFT's largest tx_search page.
const maxTxSearchPage = 100

func summarizeAccountTx(rt *client.ResultTx, addr string) *accountTx {
	v := decodeTx(rt.Tx, rt.Height, rt.Index, txOutcome{Code: rt.TxResult.Code})
	t := &accountTx{
		Hash: v.Hash, Height: v.Height, Index: v.Index, Sent: v.Signer == addr, Types: []string{},
		Fee: v.Fee, Code: v.Code, CodeName: v.CodeName,
	}
	// Transfers in it, from its body (a failed tx moved nothing, but its
	// body still says what it tried).
	for _, m := range v.Msgs {
		t.Types = append(t.Types, m.Type)
	}
	d, err := tx.Decode(rt.Tx)
	if err != nil {
		return t
	}
	for _, m := range d.Body.Msgs {
		tr := m.GetTransfer()
		if tr == nil {
			continue
		}
		to := addrString(tr.To)
		if to == addr {
			t.Received, t.In = true, t.In+tr.Amount
			if t.Counterparty == "" && !t.Sent {
				t.Counterparty = v.Signer
			}
		}
		if t.Sent {
			t.Out += tr.Amount
			if t.Counterparty == "" && to != addr {
				t.Counterparty = to
			}
		}
	}
	return t
}

// accountStakes finds the account's stakes: hotkeys it owns on every subnet
// (from the metagraphs) and hotkeys it staked to (from its transactions
// with a stake_add event), then reads its share
// record and the pool of each, all at one height.
func accountStakes(ctx context.Context, c *client.Client, addr address.Address) ([]accountStake, bool, error) {
	type pairKey struct {
		netuid uint32
		hotkey address.Address
	}
	pairs := map[pairKey]*accountStake{}
	var order []pairKey
	add := func(netuid uint32, hot address.Address) *accountStake {
		k := pairKey{netuid, hot}
		if s, ok := pairs[k]; ok {
			return s
		}
		s := &accountStake{Netuid: netuid, Hotkey: hot.String(), UID: -1}
		pairs[k] = s
		order = append(order, k)
		return s
	}

	subnets, err := c.Subnets(ctx)
	if err != nil {
		return nil, false, err
	}
	// Every metagraph at once; their heights may differ by a block, which
	// only matters to the UID column.
	graphs := make([]*tx.Metagraph, len(subnets))
	var fns []func() error
	for i, s := range subnets {
		fns = append(fns, func() (err error) {
			graphs[i], err = c.Metagraph(ctx, s.Netuid, 0)
			if errors.Is(err, client.ErrNoSubnet) {
				err = nil // dissolved since the list was read
			}
			return err
		})
	}
	var sent []*client.ResultTx
	var limited bool
	fns = append(fns, func() (err error) { sent, limited, err = scanSent(ctx, c, addr); return })
	if err := chainParallel(fns...); err != nil {
		return nil, false, err
	}
	uids := map[pairKey]int{}
	for _, mg := range graphs {
		if mg == nil {
			continue
		}
		for uid, n := range mg.Neurons {
			hot, err := address.FromBytes(n.Hotkey)
			if err != nil {
				continue
			}
			uids[pairKey{mg.Subnet.GetNetuid(), hot}] = uid
			if string(n.Coldkey) == string(addr[:]) {
				add(mg.Subnet.GetNetuid(), hot).Owned = true
			}
		}
	}
	for _, rt := range sent {
		d, err := tx.Decode(rt.Tx)
		if err != nil || rt.TxResult.Code != tx.CodeOK {
			continue
		}
		for _, m := range d.Body.Msgs {
			if sa := m.GetStakeAdd(); sa != nil {
				if hot, err := address.FromBytes(sa.Hotkey); err == nil {
					add(sa.Netuid, hot)
				}
			}
		}
	}
	if len(order) > maxStakes {
		order, limited = order[:maxStakes], true
	}
	out := make([]accountStake, len(order))
	fns = fns[:0]
	for i, k := range order {
		s := pairs[k]
		if uid, ok := uids[k]; ok {
			s.UID = uid
		}
		fns = append(fns, func() error {
			pool, shares, err := readStake(ctx, c, k.netuid, k.hotkey, addr)
			s.HotkeyStake, s.Shares, s.Stake = pool.GetStake(), shares, stakeValue(pool, shares)
			out[i] = *s
			return err
		})
	}
	if err := chainParallel(fns...); err != nil {
		return nil, false, err
	}
	// Only what is held now: a hotkey staked to and fully withdrawn from
	// drops out, an owned hotkey stays (its pool is the account's business).
	out = slices.DeleteFunc(out, func(s accountStake) bool { return s.Shares == 0 && !s.Owned })
	slices.SortStableFunc(out, func(x, y accountStake) int {
		return cmp.Or(cmp.Compare(x.Netuid, y.Netuid), cmp.Compare(y.Stake, x.Stake))
	})
	return out, limited, nil
}

// scanSent reads up to stakeScanTxs of the account's newest transactions
// that added stake; limited reports there were more.
func scanSent(ctx context.Context, c *client.Client, addr address.Address) ([]*client.ResultTx, bool, error) {
	q := fmt.Sprintf("stake_add.coldkey='%s'", addr)
	var out []*client.ResultTx
	for page := 1; len(out) < stakeScanTxs; page++ {
		res, err := c.TxSearch(ctx, q, page, stakeScanPerPage, true)
		if err != nil {
			return nil, false, err
		}
		out = append(out, res.Txs...)
		if len(res.Txs) < stakeScanPerPage || len(out) >= res.TotalCount {
			return out, false, nil
		}
	}
	return out, true, nil
}

// readStake reads a hotkey's pool on a subnet and the account's shares in
// it, both at the pool's height.
func readStake(ctx context.Context, c *client.Client, netuid uint32, hotkey, coldkey address.Address) (*tx.StakePool, uint64, error) {
	raw, _, h, err := c.Query(ctx, tx.QueryStore, tx.PoolKey(netuid, hotkey), 0, false)
	if err != nil {
		return nil, 0, err
	}
	pool := &tx.StakePool{}
	if err := proto.Unmarshal(raw, pool); err != nil {
		return nil, 0, fmt.Errorf("decode stake pool of %s on subnet %d: %w", hotkey, netuid, err)
	}
	raw, _, _, err = c.Query(ctx, tx.QueryStore, tx.DelegationKey(netuid, hotkey, coldkey), h, false)
	if err != nil {
		return nil, 0, err
	}
	if len(raw) != 8 {
		return pool, 0, nil // no shares (the record is deleted at zero)
	}
	return pool, binary.BigEndian.Uint64(raw), nil
}

// stakeValue is what shares of pool are worth: chain/subnet.StakeValue,
// floor(shares × stake / total shares), the sole holder taking it all.
func stakeValue(p *tx.StakePool, shares uint64) uint64 {
	if p.GetShares() == 0 || shares == 0 {
		return 0
	}
	if shares >= p.Shares {
		return p.Stake
	}
	hi, lo := bits.Mul64(shares, p.Stake)
	q, _ := bits.Div64(hi, lo, p.Shares) // shares < p.Shares, so hi < p.Shares
	return q
}

// accountChannels lists the channels the account opened or was opened for,
// newest first, with their state now (closed ones have no record left).
func accountChannels(ctx context.Context, c *client.Client, addr address.Address) ([]accountChannel, error) {
	a := addr.String()
	roles := []struct{ role, other string }{{"payer", "payee"}, {"payee", "payer"}}
	found := make([]*client.ResultTxSearch, len(roles))
	var fns []func() error
	for i, r := range roles {
		fns = append(fns, func() (err error) {
			found[i], err = c.TxSearch(ctx, fmt.Sprintf("channel_open.%s='%s'", r.role, a), 1, maxChannels, true)
			return err
		})
	}
	if err := chainParallel(fns...); err != nil {
		return nil, err
	}
	var out []accountChannel
	seen := map[uint64]bool{}
	for i, res := range found {
		for _, rt := range res.Txs {
			// The n-th channel_open event is the n-th ChannelOpen message's:
			// its netuid is in the body (a closed channel's record is gone).
			var opens []*tx.MsgChannelOpen
			if d, err := tx.Decode(rt.Tx); err == nil {
				for _, m := range d.Body.Msgs {
					if o := m.GetChannelOpen(); o != nil {
						opens = append(opens, o)
					}
				}
			}
			n := -1
			for _, ev := range rt.TxResult.Events {
				if ev.Type != "channel_open" {
					continue
				}
				n++
				attrs := map[string]string{}
				for _, at := range ev.Attributes {
					attrs[at.Key] = at.Value
				}
				id, err := strconv.ParseUint(attrs["channel_id"], 10, 64)
				if err != nil || attrs[roles[i].role] != a || seen[id] {
					continue
				}
				seen[id] = true
				ch := accountChannel{ID: id, Role: roles[i].role, Counterparty: attrs[roles[i].other], OpenedHeight: rt.Height}
				if n < len(opens) {
					ch.Netuid = opens[n].Netuid
				}
				out = append(out, ch)
			}
		}
	}
	fns = fns[:0]
	for i := range out {
		ch := &out[i]
		fns = append(fns, func() error {
			rec, err := c.Channel(ctx, ch.ID, false)
			if errors.Is(err, client.ErrNoChannel) {
				return nil // closed
			}
			if err != nil {
				return err
			}
			ch.Open, ch.Netuid, ch.Deposit, ch.Claimed, ch.ExpiryHeight = true, rec.Netuid, rec.Deposit, rec.Claimed, rec.ExpiryHeight
			return nil
		})
	}
	if err := chainParallel(fns...); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(x, y accountChannel) int { return cmp.Compare(y.ID, x.ID) })
	return out, nil
}

// nonNil makes an empty list marshal as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
