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
	"math"
	"os"
	"slices"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain/tx"
)

// Ledger is the gateway's durable record of accepted vouchers and charges:
// an append-only file of JSON lines.
//
// Per channel it keeps two amounts apart. Reserved is the sum of the
// maximum charges of requests still in flight; Settled is the sum of what
// finished requests actually cost. Only Settled is ever claimed on chain,
// so the payer's claim equals what the gateway's PAYMENT-RESPONSEs reported,
// to the unit. A new voucher must still cover Settled + Reserved + the new
// request's maximum, so concurrent requests can never together spend more
// than the payer signed.
//
// Crash behaviour:
//   - A voucher and its reservation are fsynced before the request is
//     answered (Durable), so a crash never loses a voucher that was served.
//   - A settle record is not fsynced by Settle (it is on the per-request
//     path); Unclaimed syncs everything written before it reads, so a charge
//     is on disk before it is ever claimed.
//   - At open, every reservation left without a settle record is released:
//     the requests it covered died with the process (or their settle record
//     had not reached the disk). The gateway bears that loss, never the payer.
type Ledger struct {
	mu       sync.Mutex
	f        *os.File
	channels map[uint64]*ledgerChannel
	written  uint64 // records appended; guarded by mu
	broken   error  // a failed write or fsync: the file's state is unknown, so accept nothing more

	// Group commit: concurrent requests share one fsync. syncMu serializes
	// fsyncs; synced is the count of records known to be on disk.
	syncMu sync.Mutex
	synced uint64
}

type ledgerChannel struct {
	Voucher  *tx.Voucher // latest accepted
	Reserved uint64      // maximum charges of requests in flight
	Settled  uint64      // charges of finished requests: what is claimed
	Claimed  uint64      // settled on chain
	// Failed is the settled total at which a claim failed on chain for a
	// reason retrying cannot fix (the payer closed the channel, the voucher
	// does not verify, …). The claimer skips the channel until new charges
	// raise Settled above it, so one bad claim cannot burn fees forever.
	Failed uint64
}

type ledgerRecord struct {
	Kind       string `json:"t"` // "voucher", "settle", "claimed", "failed"
	Channel    uint64 `json:"ch"`
	Cumulative uint64 `json:"cum,omitempty"`
	Signature  string `json:"sig,omitempty"`
	Delegation []byte `json:"del,omitempty"` // proto-encoded tx.Delegation, for session-key vouchers
	// Amount is a voucher's reservation, a settle's actual charge, a claimed
	// total, or the settled total a failed claim asked for.
	Amount uint64 `json:"amt,omitempty"`
	// Reserved is the reservation a settle record releases.
	Reserved uint64 `json:"res,omitempty"`
	Reason   string `json:"why,omitempty"` // a failed claim's error
}

// OpenLedger replays path (creating it if needed) and releases the
// reservations of requests that were in flight when it was last closed.
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
	if err := sc.Err(); err != nil {
		f.Close()
		return nil, fmt.Errorf("read ledger: %w", err)
	}
	for _, c := range l.channels {
		// Nothing is in flight in a process that has just started.
		c.Reserved = 0
		// What the chain already holds was charged, whatever the file says
		// (a ledger written by an older gateway kept charges differently).
		c.Settled = max(c.Settled, c.Claimed)
	}
	return l, nil
}

// apply folds one record into the in-memory state. Amounts saturate rather
// than wrap: a record can only come from this gateway, and a saturated sum
// is refused by the checked arithmetic in accept.
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
		c.Reserved = agr.SaturatingAdd(c.Reserved, r.Amount)
	case "settle":
		c.Reserved -= min(r.Reserved, c.Reserved)
		c.Settled = agr.SaturatingAdd(c.Settled, min(r.Amount, r.Reserved))
	case "claimed":
		c.Claimed = max(c.Claimed, r.Amount)
	case "failed":
		c.Failed = max(c.Failed, r.Amount)
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

// Accept records v and reserves maxCharge for the request it pays, if v
// strictly exceeds the channel's last voucher and covers everything settled
// and reserved plus maxCharge.
func (l *Ledger) Accept(v *tx.Voucher, maxCharge uint64) (Durable, error) {
	l.mu.Lock()
	seq, err := l.accept(v, maxCharge)
	l.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return l.durable(seq), nil
}

// need is what the next voucher on a channel must cover: everything settled
// and reserved, plus maxCharge.
func (c *ledgerChannel) need(maxCharge uint64) (uint64, error) {
	var settled, reserved uint64
	if c != nil {
		settled, reserved = c.Settled, c.Reserved
	}
	n, err := agr.Add(settled, reserved)
	if err == nil {
		n, err = agr.Add(n, maxCharge)
	}
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrInsufficient, err)
	}
	return n, nil
}

func (c *ledgerChannel) last() uint64 {
	if c == nil || c.Voucher == nil {
		return 0
	}
	return c.Voucher.Cumulative
}

func (l *Ledger) accept(v *tx.Voucher, maxCharge uint64) (uint64, error) {
	c := l.channels[v.ChannelId]
	if last := c.last(); v.Cumulative <= last {
		return 0, fmt.Errorf("%w (%d ≤ %d)", ErrReplay, v.Cumulative, last)
	}
	need, err := c.need(maxCharge)
	if err != nil {
		return 0, err
	}
	if v.Cumulative < need {
		return 0, fmt.Errorf("%w: it authorizes %d, already owed or reserved %d, this request may cost %d", ErrInsufficient, v.Cumulative, need-maxCharge, maxCharge)
	}
	return l.record(v, maxCharge)
}

func (l *Ledger) record(v *tx.Voucher, maxCharge uint64) (uint64, error) {
	r := ledgerRecord{Kind: "voucher", Channel: v.ChannelId, Cumulative: v.Cumulative, Signature: hex.EncodeToString(v.Signature), Amount: maxCharge}
	if v.Delegation != nil {
		raw, err := tx.Marshal(v.Delegation)
		if err != nil {
			return 0, fmt.Errorf("encode delegation: %w", err)
		}
		r.Delegation = raw
	}
	return l.write(r)
}

// AcceptNext makes and records the next voucher for a channel the gateway
// signs itself (with a session key), reserving maxCharge: sign receives the
// cumulative amount covering what is settled and reserved plus maxCharge,
// and may refuse it.
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
	c := l.channels[channel]
	need, err := c.need(maxCharge)
	if err != nil {
		return 0, err
	}
	last := c.last()
	if last == math.MaxUint64 {
		return 0, fmt.Errorf("%w: the channel's vouchers are exhausted", ErrInsufficient)
	}
	v, err := sign(max(last+1, need))
	if err != nil {
		return 0, err
	}
	return l.record(v, maxCharge)
}

// Settle ends a request: it releases the request's reservation
// (provisional, the maxCharge it was accepted with) and settles its actual
// charge, capped at provisional — a request never costs more than it
// reserved. It returns what the next voucher must cover before its own
// request's maximum: everything settled and still reserved on the channel.
//
// Settle does not fsync (it is on every request's path); Unclaimed makes the
// record durable before it is claimed. A crash in between loses the charge
// to the gateway's cost, never to the payer's.
func (l *Ledger) Settle(channel, provisional, actual uint64) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.channels[channel]
	if c == nil || c.Reserved < provisional {
		return 0, fmt.Errorf("%w: channel %d has %d reserved, settling %d", ErrNotReserved, channel, c.reserved(), provisional)
	}
	if _, err := l.write(ledgerRecord{Kind: "settle", Channel: channel, Amount: min(actual, provisional), Reserved: provisional}); err != nil {
		return 0, err
	}
	return agr.SaturatingAdd(c.Settled, c.Reserved), nil
}

func (c *ledgerChannel) reserved() uint64 {
	if c == nil {
		return 0
	}
	return c.Reserved
}

// ErrNotReserved is a Settle without a matching Accept: a bug in the caller.
var ErrNotReserved = errors.New("settling more than is reserved")

// Unclaimed lists what should be claimed: per channel, the latest voucher and
// the settled total, where that total exceeds what the chain already holds
// and what a claim already failed at. Reservations are never claimed. Every
// record the list is built from is on disk before it returns.
func (l *Ledger) Unclaimed() ([]*tx.MsgChannelClaim, error) {
	l.mu.Lock()
	var out []*tx.MsgChannelClaim
	for _, c := range l.channels {
		if c.Voucher != nil && c.Settled > c.Claimed && c.Settled > c.Failed {
			out = append(out, &tx.MsgChannelClaim{Voucher: c.Voucher, Amount: min(c.Settled, c.Voucher.Cumulative)})
		}
	}
	seq, broken := l.written, l.broken
	l.mu.Unlock()
	if broken != nil {
		return nil, broken
	}
	if err := l.syncTo(seq); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b *tx.MsgChannelClaim) int { return cmp.Compare(a.Voucher.ChannelId, b.Voucher.ChannelId) })
	return out, nil
}

// MarkClaimed records that the chain holds amount as channel's claimed total.
func (l *Ledger) MarkClaimed(channel, amount uint64) error {
	return l.writeDurable(ledgerRecord{Kind: "claimed", Channel: channel, Amount: amount})
}

// MarkFailed records that a claim of amount on channel failed for a reason
// retrying cannot fix; the channel is not claimed again until its settled
// total grows past amount.
func (l *Ledger) MarkFailed(channel, amount uint64, reason string) error {
	return l.writeDurable(ledgerRecord{Kind: "failed", Channel: channel, Amount: amount, Reason: reason})
}

// Owed is what a channel's next voucher must cover before its own
// request's maximum: everything settled plus everything reserved by
// requests in flight (what PAYMENT-RESPONSE and PAYMENT-REQUIRED call owed).
func (l *Ledger) Owed(channel uint64) uint64 {
	return l.read(channel, func(c *ledgerChannel) uint64 { return agr.SaturatingAdd(c.Settled, c.Reserved) })
}

// Settled is a channel's total of finished requests' charges: what the
// gateway has charged and claims. Reservations are not included.
func (l *Ledger) Settled(channel uint64) uint64 {
	return l.read(channel, func(c *ledgerChannel) uint64 { return c.Settled })
}

// Reserved is the sum of the maximum charges of a channel's requests in flight.
func (l *Ledger) Reserved(channel uint64) uint64 {
	return l.read(channel, func(c *ledgerChannel) uint64 { return c.Reserved })
}

// Claimed is what the ledger knows the chain holds for a channel.
func (l *Ledger) Claimed(channel uint64) uint64 {
	return l.read(channel, func(c *ledgerChannel) uint64 { return c.Claimed })
}

// read reports one figure of a channel under the lock; an unknown channel's
// figures are all 0.
func (l *Ledger) read(channel uint64, figure func(*ledgerChannel) uint64) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c := l.channels[channel]; c != nil {
		return figure(c)
	}
	return 0
}

// Close closes the file.
func (l *Ledger) Close() error { return l.f.Close() }
