package gateway

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/chain/tx"
)

// Ledger is the gateway's durable record of accepted vouchers and charges:
// an append-only file whose voucher records are fsynced before the request
// they pay for is served, so a crash never loses revenue. Charges are
// recorded at the request's maximum first and lowered once the actual
// price is known; a crash in between errs in the gateway's favour by at most
// one request's unused authorization, never above what the payer signed.
type Ledger struct {
	mu       sync.Mutex
	f        *os.File
	channels map[uint64]*ledgerChannel
}

type ledgerChannel struct {
	Voucher *tx.Voucher // latest accepted
	Charged uint64      // owed to the gateway, ≤ Voucher.Cumulative
	Claimed uint64      // settled on chain
}

type ledgerRecord struct {
	Kind       string `json:"t"` // "voucher", "adjust", "claimed"
	Channel    uint64 `json:"ch"`
	Cumulative uint64 `json:"cum,omitempty"`
	Signature  string `json:"sig,omitempty"`
	Delegation []byte `json:"del,omitempty"` // proto-encoded tx.Delegation, for session-key vouchers
	Amount     uint64 `json:"amt,omitempty"`
}

// OpenLedger replays path (creating it if needed).
func OpenLedger(path string) (*Ledger, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open ledger: %w", err)
	}
	l := &Ledger{f: f, channels: map[uint64]*ledgerChannel{}}
	data, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("read ledger: %w", err)
	}
	// A crash mid-write leaves a torn final line: drop it, so the next record
	// starts on a line of its own. Everything before it stands.
	if end := bytes.LastIndexByte(data, '\n') + 1; end < len(data) {
		if err := f.Truncate(int64(end)); err != nil {
			f.Close()
			return nil, fmt.Errorf("truncate torn ledger tail: %w", err)
		}
		data = data[:end]
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var r ledgerRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			f.Close()
			return nil, fmt.Errorf("ledger record %q: %w", sc.Text(), err)
		}
		l.apply(r)
	}
	return l, nil
}

func (l *Ledger) apply(r ledgerRecord) {
	c := l.channels[r.Channel]
	if c == nil {
		c = &ledgerChannel{}
		l.channels[r.Channel] = c
	}
	switch r.Kind {
	case "voucher":
		sig, _ := hex.DecodeString(r.Signature)
		c.Voucher = &tx.Voucher{ChannelId: r.Channel, Cumulative: r.Cumulative, Signature: sig}
		if len(r.Delegation) > 0 {
			d := &tx.Delegation{}
			if proto.Unmarshal(r.Delegation, d) == nil {
				c.Voucher.Delegation = d
			}
		}
		c.Charged += r.Amount
	case "adjust":
		c.Charged -= min(r.Amount, c.Charged)
	case "claimed":
		c.Claimed = max(c.Claimed, r.Amount)
	}
}

func (l *Ledger) write(r ledgerRecord, sync bool) error {
	raw, _ := json.Marshal(r)
	if _, err := l.f.Write(append(raw, '\n')); err != nil {
		return fmt.Errorf("write ledger: %w", err)
	}
	if sync {
		if err := l.f.Sync(); err != nil {
			return fmt.Errorf("sync ledger: %w", err)
		}
	}
	l.apply(r)
	return nil
}

// Errors a voucher is refused with (each becomes a 402 with its reason).
var (
	ErrReplay       = errors.New("voucher does not exceed the last one accepted on this channel")
	ErrInsufficient = errors.New("voucher does not cover this request's maximum charge")
)

// Accept records v and a provisional charge, durably, if v strictly exceeds
// the channel's last voucher and covers charged + maxCharge.
func (l *Ledger) Accept(v *tx.Voucher, maxCharge uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.channels[v.ChannelId]
	var last, charged uint64
	if c != nil {
		charged = c.Charged
		if c.Voucher != nil {
			last = c.Voucher.Cumulative
		}
	}
	if v.Cumulative <= last {
		return fmt.Errorf("%w (%d ≤ %d)", ErrReplay, v.Cumulative, last)
	}
	if v.Cumulative < charged+maxCharge {
		return fmt.Errorf("%w: it authorizes %d, already owed %d, this request may cost %d", ErrInsufficient, v.Cumulative, charged, maxCharge)
	}
	return l.record(v, maxCharge)
}

func (l *Ledger) record(v *tx.Voucher, maxCharge uint64) error {
	r := ledgerRecord{Kind: "voucher", Channel: v.ChannelId, Cumulative: v.Cumulative, Signature: hex.EncodeToString(v.Signature), Amount: maxCharge}
	if v.Delegation != nil {
		raw, err := tx.Marshal(v.Delegation)
		if err != nil {
			return err
		}
		r.Delegation = raw
	}
	return l.write(r, true)
}

// AcceptNext makes and records the next voucher for a channel the gateway
// signs itself (with a session key): sign receives the cumulative amount
// covering what is owed plus maxCharge, and may refuse it.
func (l *Ledger) AcceptNext(channel, maxCharge uint64, sign func(cumulative uint64) (*tx.Voucher, error)) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var last, charged uint64
	if c := l.channels[channel]; c != nil {
		charged = c.Charged
		if c.Voucher != nil {
			last = c.Voucher.Cumulative
		}
	}
	v, err := sign(max(last+1, charged+maxCharge))
	if err != nil {
		return err
	}
	return l.record(v, maxCharge)
}

// Settle lowers a provisional charge to the actual one and returns the
// channel's total owed.
func (l *Ledger) Settle(channel, provisional, actual uint64) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if actual < provisional {
		if err := l.write(ledgerRecord{Kind: "adjust", Channel: channel, Amount: provisional - actual}, false); err != nil {
			return 0, err
		}
	}
	return l.channels[channel].Charged, nil
}

// Unclaimed lists what should be claimed: per channel, the latest voucher and
// the owed total, where that total exceeds what is settled.
func (l *Ledger) Unclaimed() []*tx.MsgChannelClaim {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*tx.MsgChannelClaim
	for _, c := range l.channels {
		if c.Voucher != nil && c.Charged > c.Claimed {
			out = append(out, &tx.MsgChannelClaim{Voucher: c.Voucher, Amount: c.Charged})
		}
	}
	slices.SortFunc(out, func(a, b *tx.MsgChannelClaim) int { return cmp.Compare(a.Voucher.ChannelId, b.Voucher.ChannelId) })
	return out
}

// MarkClaimed records a settlement.
func (l *Ledger) MarkClaimed(channel, amount uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.write(ledgerRecord{Kind: "claimed", Channel: channel, Amount: amount}, true)
}

// Owed is a channel's total charge.
func (l *Ledger) Owed(channel uint64) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c := l.channels[channel]; c != nil {
		return c.Charged
	}
	return 0
}

// Close closes the file.
func (l *Ledger) Close() error { return l.f.Close() }
