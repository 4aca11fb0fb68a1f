package gateway

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/client"
)

// ClaimChain is what the claimer needs of the chain; *client.Client has it.
type ClaimChain interface {
	SendAndWait(ctx context.Context, key ed25519.PrivateKey, msgs []*tx.Msg, o client.SendOptions) (int64, error)
	Height(ctx context.Context) (int64, error)
	Channel(ctx context.Context, id uint64, prove bool) (*tx.Channel, error)
	Params(ctx context.Context, prove bool) (*tx.Params, error)
}

// MinExpiryMargin is the smallest ExpiryMargin a claimer accepts: it checks
// for channels near their deadline every quarter of the margin, and a claim
// needs a block or two to be included, so below this a channel could pass
// its deadline between two checks.
const MinExpiryMargin = 4

// DefaultClaimInterval is how often everything settled is claimed when no
// channel is near its deadline.
const DefaultClaimInterval = time.Minute

// ErrClaimSchedule is a claim schedule that could let a channel expire
// unclaimed.
var ErrClaimSchedule = errors.New("claim schedule cannot keep up with channel expiry")

// ErrClaimFailed reports claims the chain refused; they are not retried
// until their channel's settled total grows.
var ErrClaimFailed = errors.New("claim refused by the chain")

// ClaimConfig configures a Claimer.
type ClaimConfig struct {
	Chain  ClaimChain
	Key    ed25519.PrivateKey // the payee: the gateway's hotkey
	Ledger *Ledger
	// Interval is how often everything settled is claimed (0: a minute).
	// Fewer claims burn fewer fees; the expiry checks below keep a long
	// interval safe.
	Interval time.Duration
	// ExpiryMargin is the gateway's Payments.ExpiryMargin: from this many
	// blocks before a channel's (or a session key's) expiry, no voucher is
	// accepted on it, and the claimer claims it at once instead of waiting
	// for Interval. The claimer checks for such channels every
	// ExpiryMargin/4 blocks, so the margin is what ties the two together.
	ExpiryMargin uint64
	// BlockTime is the chain's block time (0: the chain's target).
	BlockTime time.Duration
	// MaxMsgsPerTx caps a claim transaction (0: the chain's limit).
	MaxMsgsPerTx int
	Logger       *slog.Logger
	// Metrics count claims (nil: not counted).
	Metrics *Metrics
}

// FailedClaim is a claim the chain refused, and why.
type FailedClaim struct {
	Channel uint64
	Amount  uint64
	Err     error
}

// ClaimReport is what one claim round did.
type ClaimReport struct {
	Claimed []*tx.MsgChannelClaim
	Failed  []FailedClaim
}

// Claimer settles the ledger's charges on chain. Claims are isolated from
// one another: they go in transactions under the chain's message limit, and
// a claim the chain refuses is dropped (and reported) so the rest go
// through; it is not retried, because every failing transaction burns its
// fee. It is safe to restart: the ledger knows what was claimed, and claims
// on chain are idempotent.
type Claimer struct {
	cfg        ClaimConfig
	checkEvery time.Duration
	log        *slog.Logger

	mu      sync.Mutex        // serializes rounds
	expiry  map[uint64]uint64 // channel → expiry height read from the chain; expiry only moves later, so a stale value is safe
	maxMsgs int

	afterRound func() // tests: called after each of Run's rounds
}

// NewClaimer checks cfg and makes a claimer; it reads the chain's block
// time and message limit when cfg leaves them 0.
func NewClaimer(ctx context.Context, cfg ClaimConfig) (*Claimer, error) {
	if cfg.Chain == nil || cfg.Ledger == nil || len(cfg.Key) != ed25519.PrivateKeySize {
		return nil, errors.New("claimer: chain, ledger and key are required")
	}
	if cfg.Interval < 0 || cfg.BlockTime < 0 || cfg.MaxMsgsPerTx < 0 {
		return nil, fmt.Errorf("%w: negative interval, block time or message limit", ErrClaimSchedule)
	}
	if cfg.ExpiryMargin < MinExpiryMargin {
		return nil, fmt.Errorf("%w: an expiry margin of %d blocks leaves no time to claim (minimum %d)", ErrClaimSchedule, cfg.ExpiryMargin, MinExpiryMargin)
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultClaimInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.BlockTime == 0 || cfg.MaxMsgsPerTx == 0 {
		p, err := cfg.Chain.Params(ctx, false)
		if err != nil {
			return nil, fmt.Errorf("claimer: read chain params: %w", err)
		}
		if cfg.BlockTime == 0 {
			cfg.BlockTime = time.Duration(p.TargetBlockTimeMs) * time.Millisecond
		}
		if cfg.MaxMsgsPerTx == 0 {
			cfg.MaxMsgsPerTx = int(min(p.MaxMsgsPerTx, 1<<16))
		}
		if cfg.BlockTime <= 0 || cfg.MaxMsgsPerTx <= 0 {
			return nil, fmt.Errorf("claimer: chain params give block time %v and %d messages per tx", cfg.BlockTime, cfg.MaxMsgsPerTx)
		}
	}
	// Derived, not configured: a check every quarter of the margin leaves
	// three quarters of it for the claim to be included.
	checkEvery := min(cfg.Interval, time.Duration(cfg.ExpiryMargin/4)*cfg.BlockTime)
	return &Claimer{cfg: cfg, checkEvery: checkEvery, log: cfg.Logger, expiry: map[uint64]uint64{}, maxMsgs: cfg.MaxMsgsPerTx}, nil
}

// CheckEvery is how often Run looks for channels near their deadline.
func (c *Claimer) CheckEvery() time.Duration { return c.checkEvery }

// Run claims everything at once, then everything every Interval and any
// channel near its deadline as soon as it gets there, until ctx ends.
func (c *Claimer) Run(ctx context.Context) {
	t := time.NewTicker(c.checkEvery)
	defer t.Stop()
	var lastAll time.Time
	for {
		all := lastAll.IsZero() || time.Since(lastAll) >= c.cfg.Interval
		if all {
			lastAll = time.Now()
		}
		rep, err := c.Once(ctx, all)
		if err != nil && ctx.Err() == nil && !errors.Is(err, ErrClaimFailed) {
			c.log.Warn("claim round failed; retrying next round", "err", err.Error())
		}
		if len(rep.Claimed) > 0 {
			c.log.Info("claimed", "channels", len(rep.Claimed))
		}
		if c.afterRound != nil {
			c.afterRound()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ClaimOnce claims everything settled in ledger now, with a claimer of the
// chain's defaults. Claims the chain refuses are dropped and reported in
// an error wrapping ErrClaimFailed; the others are claimed.
func ClaimOnce(ctx context.Context, c *client.Client, key ed25519.PrivateKey, l *Ledger) error {
	cl, err := NewClaimer(ctx, ClaimConfig{Chain: c, Key: key, Ledger: l, ExpiryMargin: MinExpiryMargin})
	if err != nil {
		return err
	}
	_, err = cl.Once(ctx, true)
	return err
}

// Once runs one claim round: every settled charge if all, else only the
// channels within ExpiryMargin of their deadline. Refused claims are in the
// report and in an error wrapping ErrClaimFailed; any other error (the chain
// unreachable, a nonce race) leaves the remaining claims for the next round.
func (c *Claimer) Once(ctx context.Context, all bool) (ClaimReport, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var rep ClaimReport
	claims, err := c.cfg.Ledger.Unclaimed()
	if err != nil {
		return rep, fmt.Errorf("read the ledger: %w", err)
	}
	if len(claims) == 0 {
		return rep, nil
	}
	height, err := c.cfg.Chain.Height(ctx)
	if err != nil {
		return rep, fmt.Errorf("chain height: %w", err)
	}
	due, err := c.due(ctx, claims, uint64(max(height, 0)), all, &rep)
	if err != nil {
		return rep, err
	}
	for start := 0; start < len(due); start += c.maxMsgs {
		if err := c.send(ctx, due[start:min(start+c.maxMsgs, len(due))], &rep); err != nil {
			return rep, err
		}
	}
	return rep, rep.err()
}

func (r *ClaimReport) err() error {
	if len(r.Failed) == 0 {
		return nil
	}
	errs := []error{ErrClaimFailed}
	for _, f := range r.Failed {
		errs = append(errs, fmt.Errorf("channel %d (%d): %w", f.Channel, f.Amount, f.Err))
	}
	return errors.Join(errs...)
}

// due picks the claims to make this round, dropping those whose channel is
// gone from the chain (the payer closed it after expiry: nothing left to
// claim, and a claim would only burn its fee).
func (c *Claimer) due(ctx context.Context, claims []*tx.MsgChannelClaim, height uint64, all bool, rep *ClaimReport) ([]*tx.MsgChannelClaim, error) {
	seen := make(map[uint64]bool, len(claims))
	var due []*tx.MsgChannelClaim
	for _, cl := range claims {
		id := cl.Voucher.ChannelId
		seen[id] = true
		expiry, ok := c.expiry[id]
		if !ok {
			ch, err := c.cfg.Chain.Channel(ctx, id, false)
			switch {
			case errors.Is(err, client.ErrNoChannel):
				if err := c.fail(cl, err, rep); err != nil {
					return nil, err
				}
				continue
			case err != nil:
				// Unknown deadline: claim it now rather than risk missing it.
				due = append(due, cl)
				continue
			}
			expiry = ch.ExpiryHeight
			c.expiry[id] = expiry
		}
		deadline := expiry
		if d := cl.Voucher.Delegation; d != nil {
			deadline = min(deadline, d.ExpiryHeight)
		}
		if all || height+c.cfg.ExpiryMargin >= deadline {
			due = append(due, cl)
		}
	}
	for id := range c.expiry {
		if !seen[id] {
			delete(c.expiry, id) // fully claimed: stop remembering it
		}
	}
	return due, nil
}

// send claims batch in one transaction. When the chain refuses one of its
// messages, that claim is dropped and the rest are sent again; each failure
// removes at least one claim, so this ends.
func (c *Claimer) send(ctx context.Context, batch []*tx.MsgChannelClaim, rep *ClaimReport) error {
	for len(batch) > 0 {
		msgs := make([]*tx.Msg, len(batch))
		for i, cl := range batch {
			msgs[i] = &tx.Msg{Sum: &tx.Msg_ChannelClaim{ChannelClaim: cl}}
		}
		err := c.sendMsgs(ctx, msgs)
		if err == nil {
			for _, cl := range batch {
				before := c.cfg.Ledger.Claimed(cl.Voucher.ChannelId)
				if err := c.cfg.Ledger.MarkClaimed(cl.Voucher.ChannelId, cl.Amount); err != nil {
					return fmt.Errorf("record claim of channel %d: %w", cl.Voucher.ChannelId, err)
				}
				c.cfg.Metrics.claimed(cl.Amount - min(before, cl.Amount))
				rep.Claimed = append(rep.Claimed, cl)
			}
			return nil
		}
		var te *client.TxError
		if !errors.As(err, &te) {
			return fmt.Errorf("claim %d channels: %w", len(batch), err)
		}
		// A message the chain names is the culprit whatever its code.
		i, ok := failedMessage(te.Log)
		if !ok || i >= len(batch) {
			if transientCode(te.Code) {
				return fmt.Errorf("claim %d channels: %w", len(batch), err)
			}
			if len(batch) > 1 {
				// Refused, but the chain did not say which message: halve
				// the batch until it does, or until one claim is left.
				half := len(batch) / 2
				if err := c.send(ctx, batch[:half], rep); err != nil {
					return err
				}
				batch = batch[half:]
				continue
			}
			i = 0
		}
		if err := c.fail(batch[i], te, rep); err != nil {
			return err
		}
		batch = append(batch[:i:i], batch[i+1:]...)
	}
	return nil
}

// nonceRetries is how many times a transaction that lost a nonce race is
// signed again: the payee's hotkey also sends the validator's weights.
const nonceRetries = 3

func (c *Claimer) sendMsgs(ctx context.Context, msgs []*tx.Msg) error {
	for attempt := 0; ; attempt++ {
		_, err := c.cfg.Chain.SendAndWait(ctx, c.cfg.Key, msgs, client.SendOptions{})
		var te *client.TxError
		if attempt == nonceRetries || !errors.As(err, &te) || te.Code != tx.CodeBadNonce {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(c.cfg.BlockTime): // the other transaction lands, the pending nonce moves
		}
	}
}

func (c *Claimer) fail(cl *tx.MsgChannelClaim, cause error, rep *ClaimReport) error {
	id := cl.Voucher.ChannelId
	c.log.Warn("claim refused; dropped until the channel is charged again", "channel", id, "amount", cl.Amount, "err", cause.Error())
	rep.Failed = append(rep.Failed, FailedClaim{Channel: id, Amount: cl.Amount, Err: cause})
	c.cfg.Metrics.refused()
	if err := c.cfg.Ledger.MarkFailed(id, cl.Amount, cause.Error()); err != nil {
		return fmt.Errorf("record failed claim of channel %d: %w", id, err)
	}
	return nil
}

// transientCode is a refusal, naming no message, of the transaction as a
// whole (its envelope, nonce or fee) rather than of a claim in it: retrying
// later may succeed.
func transientCode(code uint32) bool {
	switch code {
	case tx.CodeBadNonce, tx.CodeFeeTooLow, tx.CodeInsufficientFunds, tx.CodeWrongChain,
		tx.CodeMalformed, tx.CodeBadSignature, tx.CodeFull, tx.CodeRateLimited,
		tx.CodeInternal, tx.CodeNotAvailable:
		return true
	}
	return false
}

// messageFailure matches how the chain reports a failing message
// ("message 3: …", chain/exec.go).
var messageFailure = regexp.MustCompile(`(?:^|: )message (\d+): `)

func failedMessage(log string) (int, bool) {
	m := messageFailure.FindStringSubmatch(log)
	if m == nil {
		return 0, false
	}
	i, err := strconv.Atoi(m[1])
	return i, err == nil
}
