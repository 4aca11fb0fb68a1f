// Package lightclient keeps a CometBFT light client in step with an Agora
// chain, so proven queries rest on headers verified from a trusted height
// through every change of the chain validators, not on whatever validator
// set the answering node reports.
//
// It is a separate package because CometBFT's light client links its RPC
// stack and a database (for the trusted store): SDK users who want it
// import this package and hand the Verifier to client.Client.SetVerifier;
// client itself stays lean.
package lightclient

import (
	"context"
	"errors"
	"fmt"
	"time"

	dbm "github.com/cometbft/cometbft-db"
	cmtlog "github.com/cometbft/cometbft/libs/log"
	"github.com/cometbft/cometbft/light"
	"github.com/cometbft/cometbft/light/provider"
	dbstore "github.com/cometbft/cometbft/light/store/db"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/agoranet/agora/client"
)

// DefaultTrustPeriod is how long a verified header stays a valid root of
// trust. It must stay below the chain's unbonding period: after that, the
// chain validators who signed it may have left with their stake and could
// sign a fork at no cost.
const DefaultTrustPeriod = 7 * 24 * time.Hour

// Options configure a Verifier.
type Options struct {
	// TrustHeight and TrustHash name a header the operator trusts,
	// obtained out of band (a block explorer, a friend, the genesis
	// coordinator).
	TrustHeight int64
	TrustHash   []byte
	// TrustPeriod defaults to DefaultTrustPeriod.
	TrustPeriod time.Duration
	// Dir, when set, keeps verified headers in a database there, so trust
	// survives restarts; empty keeps them in memory.
	Dir string
}

// Verifier is a light client over one primary node and at least one
// witness. It implements client.HeaderVerifier.
type Verifier struct {
	lc      *light.Client
	primary *client.Client
	db      dbm.DB
}

// New verifies the trusted header against primary and returns a Verifier.
// Witnesses are other nodes of the same chain; the light client cross-checks
// every header it accepts against them and reports a primary that forks
// from them. With only one node available, pass it again as its own
// witness: verification still holds, but lies are then only caught by
// signatures, not by comparison.
func New(ctx context.Context, chainID string, primary *client.Client, witnesses []*client.Client, o Options) (*Verifier, error) {
	if len(witnesses) == 0 {
		return nil, errors.New("light client needs at least one witness node")
	}
	if o.TrustPeriod == 0 {
		o.TrustPeriod = DefaultTrustPeriod
	}
	var (
		db  dbm.DB
		err error
	)
	if o.Dir != "" {
		if db, err = dbm.NewGoLevelDB("light", o.Dir); err != nil {
			return nil, fmt.Errorf("open light client store in %s: %w", o.Dir, err)
		}
	} else {
		db = dbm.NewMemDB()
	}
	ws := make([]provider.Provider, len(witnesses))
	for i, w := range witnesses {
		ws[i] = &Provider{chainID: chainID, c: w}
	}
	lc, err := light.NewClient(ctx, chainID,
		light.TrustOptions{Period: o.TrustPeriod, Height: o.TrustHeight, Hash: o.TrustHash},
		&Provider{chainID: chainID, c: primary}, ws,
		dbstore.New(db, chainID),
		light.SkippingVerification(light.DefaultTrustLevel),
		light.Logger(cmtlog.NewNopLogger()),
	)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("light client from height %d: %w", o.TrustHeight, err)
	}
	return &Verifier{lc: lc, primary: primary, db: db}, nil
}

// VerifiedHeader is the header at height, verified by skipping
// verification from the last trusted header and cross-checked with the
// witnesses. A height the primary has not committed yet is
// client.ErrNoHeader, so callers can wait for it.
func (v *Verifier) VerifiedHeader(ctx context.Context, height int64) (*cmttypes.SignedHeader, error) {
	if lb, err := v.lc.TrustedLightBlock(height); err == nil {
		return lb.SignedHeader, nil
	}
	// Asked for a future height, CometBFT's light client would give up on
	// the primary and promote a witness; ask the primary first instead.
	latest, err := v.primary.Height(ctx)
	if err != nil {
		return nil, fmt.Errorf("primary height: %w", err)
	}
	if height > latest {
		return nil, fmt.Errorf("%w: height %d, primary at %d", client.ErrNoHeader, height, latest)
	}
	lb, err := v.lc.VerifyLightBlockAtHeight(ctx, height, time.Now())
	if err != nil {
		return nil, fmt.Errorf("verify header %d: %w", height, err)
	}
	return lb.SignedHeader, nil
}

// LastTrustedHeight is the highest header verified so far.
func (v *Verifier) LastTrustedHeight() (int64, error) { return v.lc.LastTrustedHeight() }

// Close releases the trusted store.
func (v *Verifier) Close() error { return v.db.Close() }

// Provider serves light blocks from one node through Agora's client, which
// links none of CometBFT's node packages.
type Provider struct {
	chainID string
	c       *client.Client
}

// NewProvider is a light-block provider over c for chainID.
func NewProvider(chainID string, c *client.Client) *Provider {
	return &Provider{chainID: chainID, c: c}
}

// ChainID implements provider.Provider.
func (p *Provider) ChainID() string { return p.chainID }

func (p *Provider) String() string { return fmt.Sprintf("agora node %v", p.c.Endpoints()) }

// LightBlock implements provider.Provider: the signed header and validator
// set of height (0: latest), checked only for shape; the light client does
// the verifying.
func (p *Provider) LightBlock(ctx context.Context, height int64) (*cmttypes.LightBlock, error) {
	if height > 0 {
		latest, err := p.c.Height(ctx)
		if err != nil {
			return nil, provider.ErrNoResponse
		}
		if height > latest {
			return nil, provider.ErrHeightTooHigh
		}
	}
	sh, err := p.c.Commit(ctx, height)
	if errors.Is(err, client.ErrNoHeader) {
		return nil, provider.ErrLightBlockNotFound
	}
	if err != nil {
		return nil, provider.ErrNoResponse
	}
	if sh.Header == nil || sh.Commit == nil {
		return nil, provider.ErrBadLightBlock{Reason: errors.New("node returned no header or commit")}
	}
	vals, err := p.c.ConsensusValidators(ctx, sh.Height)
	if err != nil {
		return nil, provider.ErrNoResponse
	}
	lb := &cmttypes.LightBlock{SignedHeader: sh, ValidatorSet: vals}
	if err := lb.ValidateBasic(p.chainID); err != nil {
		return nil, provider.ErrBadLightBlock{Reason: err}
	}
	return lb, nil
}

// ReportEvidence implements provider.Provider.
func (p *Provider) ReportEvidence(ctx context.Context, ev cmttypes.Evidence) error {
	return p.c.BroadcastEvidence(ctx, ev)
}
