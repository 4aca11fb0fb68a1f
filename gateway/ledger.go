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
	written  uint64 // records appended; guarded by mu
	broken   error  // a failed fsync: the file's state is unknown, so accept nothing more

	// Group commit: concurrent requests share one fsync. syncMu serializes
	// fsyncs; synced is the count of records known to be on disk.
	syncMu sync.Mutex
	synced uint64
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

// write appends r (with mu held) and returns its sequence number; durable
// callers then wait for it with syncTo, after releasing mu.
func (l *Ledger) write(r ledgerRecord) (uint64, error) {
	if l.broken != nil {
		return 0, l.broken
	}
	raw, _ := json.Marshal(r)
	if _, err := l.f.Write(append(raw, '\n')); err != nil {
		l.broken = fmt.Errorf("write ledger: %w", err)
		return 0, l.broken
	}
	l.apply(r)
	l.written++
	return l.written, nil
}

// syncTo returns once record seq is on disk. Whoever syncs covers every
// record written before it, so under load one fsync serves many requests.
func (l *Ledger) syncTo(seq uint64) error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if l.synced >= seq {
		return nil
	}
	l.mu.Lock()
	target, broken := l.written, l.broken
	l.mu.Unlock()
	if broken != nil {
		return broken
	}
	if err := l.f.Sync(); err != nil {
		l.mu.Lock()
		l.broken = fmt.Errorf("sync ledger: %w", err)
		l.mu.Unlock()
		return err
	}
	l.synced = target
	return nil
}

// writeDurable appends r and waits until it is on disk.
func (l *Ledger) writeDurable(r ledgerRecord) error {
	l.mu.Lock()
	seq, err := l.write(r)
	l.mu.Unlock()
	if err != nil {
		return err
	}
	return l.syncTo(seq)
}

// Errors a voucher is refused with (each becomes a 402 with its reason).
var (
	ErrReplay       = errors.New("voucher does not exceed the last one accepted on this channel")
	ErrInsufficient = errors.New("voucher does not cover this request's maximum charge")
)

// Durable waits until an accepted voucher is on disk. A gateway may forward
// the request meanwhile, so the fsync overlaps the miner's work, but must
// call it before answering.
type Durable func() error

func (l *Ledger) durable(seq uint64) Durable { return func() error { return l.syncTo(seq) } }

// Accept records v and a provisional charge if v strictly exceeds the
// channel's last voucher and covers charged + maxCharge.
func (l *Ledger) Accept(v *tx.Voucher, maxCharge uint64) (Durable, error) {
	l.mu.Lock()
	seq, err := l.accept(v, maxCharge)
	l.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return l.durable(seq), nil
}

func (l *Ledger) accept(v *tx.Voucher, maxCharge uint64) (uint64, error) {
	c := l.channels[v.ChannelId]
	var last, charged uint64
	if c != nil {
		charged = c.Charged
		if c.Voucher != nil {
			last = c.Voucher.Cumulative
		}
	}
	if v.Cumulative <= last {
		return 0, fmt.Errorf("%w (%d ≤ %d)", ErrReplay, v.Cumulative, last)
	}
	if v.Cumulative < charged+maxCharge {
		return 0, fmt.Errorf("%w: it authorizes %d, already owed %d, this request may cost %d", ErrInsufficient, v.Cumulative, charged, maxCharge)
	}
	return l.record(v, maxCharge)
}

func (l *Ledger) record(v *tx.Voucher, maxCharge uint64) (uint64, error) {
	r := ledgerRecord{Kind: "voucher", Channel: v.ChannelId, Cumulative: v.Cumulative, Signature: hex.EncodeToString(v.Signature), Amount: maxCharge}
	if v.Delegation != nil {
		raw, err := tx.Marshal(v.Delegation)
		if err != nil {
			return 0, err
		}
		r.Delegation = raw
	}
	return l.write(r)
}

// AcceptNext makes and records the next voucher for a channel the gateway
// signs itself (with a session key): sign receives the cumulative amount
// covering what is owed plus maxCharge, and may refuse it.
func (l *Ledger) AcceptNext(channel, maxCharge uint64, sign func(cumulative uint64) (*tx.Voucher, error)) (Durable, error) {
	l.mu.Lock()
	seq, err := l.acceptNext(channel, maxCharge, sign)
	l.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return l.durable(seq), nil
}

func (l *Ledger) acceptNext(channel, maxCharge uint64, sign func(cumulative uint64) (*tx.Voucher, error)) (uint64, error) {
	var last, charged uint64
	if c := l.channels[channel]; c != nil {
		charged = c.Charged
		if c.Voucher != nil {
			last = c.Voucher.Cumulative
		}
	}
	v, err := sign(max(last+1, charged+maxCharge))
	if err != nil {
		return 0, err
	}
	return l.record(v, maxCharge)
}

// Settle lowers a provisional charge to the actual one and returns the
// channel's total owed.
func (l *Ledger) Settle(channel, provisional, actual uint64) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	// Not synced: losing an adjustment errs in the gateway's favour by at
	// most what the payer authorized for this request.
	if actual < provisional {
		if _, err := l.write(ledgerRecord{Kind: "adjust", Channel: channel, Amount: provisional - actual}); err != nil {
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
	return l.writeDurable(ledgerRecord{Kind: "claimed", Channel: channel, Amount: amount})
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
