package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	rpctypes "github.com/cometbft/cometbft/rpc/jsonrpc/types"
	cmttypes "github.com/cometbft/cometbft/types"
	ics23 "github.com/cosmos/ics23/go"
	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/chain/proof"
	"github.com/agoranet/agora/chain/tx"
)

// Proof says how a queried value was verified.
type Proof struct {
	Height  int64  `json:"height"`   // state version the value belongs to
	AppHash []byte `json:"app_hash"` // root it was proven against (from header Height+1)
	Header  int64  `json:"header"`   // height of the signed header carrying AppHash
}

// QueryError is a query the node answered with a non-OK ABCI code.
type QueryError struct {
	Path string
	Code uint32
	Log  string
}

func (e *QueryError) Error() string {
	return fmt.Sprintf("query %s: code %d: %s", e.Path, e.Code, e.Log)
}

// ErrProof wraps every reason a proven answer is refused: a node that
// answers another key than the one asked, a value the proof does not
// commit to, or a proof that does not reach a signed app hash.
var ErrProof = errors.New("proof does not verify")

// Query reads a state key by path. With prove it returns only after checking
// the ICS-23 proof, for the key that path and data name (not whatever key
// the node says it answered), against the app hash of a header signed by
// +2/3 of that header's validator set.
func (c *Client) Query(ctx context.Context, path string, data []byte, height int64, prove bool) ([]byte, *Proof, int64, error) {
	var want []byte
	if prove {
		// The key comes from the question, computed here: a node cannot
		// answer Alice's balance with Bob's, proof and all.
		var err error
		if want, err = tx.QueryKey(path, data); err != nil {
			return nil, nil, 0, fmt.Errorf("query %s: not provable: %w", path, err)
		}
	}
	res, err := c.rpc.abciQuery(ctx, path, data, height, prove)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("query %s: %w", path, err)
	}
	r := res.Response
	if r.Code != tx.CodeOK {
		return nil, nil, 0, &QueryError{Path: path, Code: r.Code, Log: r.Log}
	}
	if !prove {
		return r.Value, nil, r.Height, nil
	}
	p, err := c.verify(ctx, want, height, r)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("query %s: %w", path, err)
	}
	return r.Value, p, r.Height, nil
}

// verify checks that r proves the value of key at height (0: any height the
// node chose) against a signed header.
func (c *Client) verify(ctx context.Context, key []byte, height int64, r abci.ResponseQuery) (*Proof, error) {
	if !bytes.Equal(r.Key, key) {
		return nil, fmt.Errorf("%w: asked for key %x, node answered for %x", ErrProof, key, r.Key)
	}
	if r.Height <= 0 || (height > 0 && r.Height != height) {
		return nil, fmt.Errorf("%w: asked for height %d, node answered for %d", ErrProof, height, r.Height)
	}
	if r.ProofOps == nil || len(r.ProofOps.Ops) != 1 || r.ProofOps.Ops[0].Type != proof.OpType {
		return nil, fmt.Errorf("%w: node returned no %s proof", ErrProof, proof.OpType)
	}
	op := r.ProofOps.Ops[0]
	if !bytes.Equal(op.Key, key) {
		return nil, fmt.Errorf("%w: proof is for key %x, asked for %x", ErrProof, op.Key, key)
	}
	var cp ics23.CommitmentProof
	if err := cp.Unmarshal(op.Data); err != nil {
		return nil, fmt.Errorf("%w: decode proof: %v", ErrProof, err)
	}
	// The state after block H is committed to by the app hash in header H+1.
	hdr, err := c.trustedHeader(ctx, r.Height+1)
	if err != nil {
		return nil, err
	}
	var value []byte
	if len(r.Value) > 0 {
		value = r.Value
	}
	if err := proof.Verify(hdr.AppHash, &cp, key, value); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrProof, err)
	}
	return &Proof{Height: r.Height, AppHash: hdr.AppHash, Header: hdr.Height}, nil
}

// trustedHeader is header height from the verifier when the client has one,
// else as SignedHeader checks it. A header not yet committed is waited for
// briefly either way.
func (c *Client) trustedHeader(ctx context.Context, height int64) (*cmttypes.SignedHeader, error) {
	if c.verifier == nil {
		return c.SignedHeader(ctx, height)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		hdr, err := c.verifier.VerifiedHeader(ctx, height)
		if err == nil {
			return hdr, nil
		}
		if !errors.Is(err, ErrNoHeader) || time.Now().After(deadline) {
			return nil, fmt.Errorf("%w: header %d: %v", ErrProof, height, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for header %d: %w", height, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Commit is the signed header at height (0: the latest) exactly as the node
// reports it, unverified; ErrNoHeader when the node has not committed it.
func (c *Client) Commit(ctx context.Context, height int64) (*cmttypes.SignedHeader, error) {
	res, err := c.rpc.commit(ctx, height)
	if err != nil {
		var rpcErr *rpctypes.RPCError
		if errors.As(err, &rpcErr) && height > 0 {
			return nil, fmt.Errorf("%w: height %d: %v", ErrNoHeader, height, err)
		}
		return nil, fmt.Errorf("commit %d: %w", height, err)
	}
	// The latest block's commit is the one this node saw rather than the
	// canonical one in the next block; both carry +2/3 of the signatures.
	return &res.SignedHeader, nil
}

// ConsensusValidators is the chain validator set CometBFT used at height,
// as the node reports it, unverified.
func (c *Client) ConsensusValidators(ctx context.Context, height int64) (*cmttypes.ValidatorSet, error) {
	return c.validators(ctx, height)
}

// BroadcastEvidence hands evidence of misbehaviour (from a light client) to
// the node, which gossips it to the chain validators.
func (c *Client) BroadcastEvidence(ctx context.Context, ev cmttypes.Evidence) error {
	if _, err := call[struct{}](ctx, c.rpc, "broadcast_evidence", map[string]any{"evidence": ev}); err != nil {
		return fmt.Errorf("broadcast evidence: %w", err)
	}
	return nil
}

// SignedHeader fetches the header at height, waiting briefly for it to be
// committed, and checks that +2/3 of its validator set signed it.
func (c *Client) SignedHeader(ctx context.Context, height int64) (*cmttypes.SignedHeader, error) {
	chainID, err := c.ChainID(ctx)
	if err != nil {
		return nil, err
	}
	var commit *cmttypes.SignedHeader
	deadline := time.Now().Add(15 * time.Second)
	for {
		res, err := c.rpc.commit(ctx, height)
		if err == nil && res.CanonicalCommit {
			commit = &res.SignedHeader
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w: height %d (last error: %v)", ErrNoHeader, height, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for header %d: %w", height, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	vals, err := c.validators(ctx, height)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(vals.Hash(), commit.ValidatorsHash) {
		return nil, fmt.Errorf("validator set at %d does not match header %d", height, height)
	}
	if err := commit.ValidateBasic(chainID); err != nil {
		return nil, fmt.Errorf("header %d: %w", height, err)
	}
	if err := vals.VerifyCommitLight(chainID, commit.Commit.BlockID, height, commit.Commit); err != nil {
		return nil, fmt.Errorf("header %d not signed by its validators: %w", height, err)
	}
	return commit, nil
}

func (c *Client) validators(ctx context.Context, height int64) (*cmttypes.ValidatorSet, error) {
	var all []*cmttypes.Validator
	perPage := 100
	for page := 1; ; page++ {
		p := page
		res, err := c.rpc.validators(ctx, height, p, perPage)
		if err != nil {
			return nil, fmt.Errorf("validators at %d: %w", height, err)
		}
		all = append(all, res.Validators...)
		if len(all) >= res.Total || len(res.Validators) == 0 {
			break
		}
	}
	vs, err := cmttypes.ValidatorSetFromExistingValidators(all)
	if err != nil {
		return nil, fmt.Errorf("validator set at %d: %w", height, err)
	}
	return vs, nil
}

func (c *Client) queryProto(ctx context.Context, path string, prove bool, m proto.Message) (*Proof, int64, error) {
	raw, p, h, err := c.Query(ctx, path, nil, 0, prove)
	if err != nil {
		return nil, 0, err
	}
	if err := proto.Unmarshal(raw, m); err != nil {
		return nil, 0, fmt.Errorf("decode %s: %w", path, err)
	}
	return p, h, nil
}

// Account reads addr's committed account (zero if never used).
func (c *Client) Account(ctx context.Context, addr address.Address, prove bool) (*tx.Account, *Proof, error) {
	acc := &tx.Account{}
	p, _, err := c.queryProto(ctx, tx.QueryAccount+addr.String(), prove, acc)
	return acc, p, err
}

// Supply reads the supply record: genesis, minted, burned, pending emission.
func (c *Client) Supply(ctx context.Context, prove bool) (*tx.Supply, *Proof, error) {
	s := &tx.Supply{}
	p, _, err := c.queryProto(ctx, tx.QuerySupply, prove, s)
	return s, p, err
}

// Params reads the chain parameters.
func (c *Client) Params(ctx context.Context, prove bool) (*tx.Params, error) {
	p := &tx.Params{}
	_, _, err := c.queryProto(ctx, tx.QueryParams, prove, p)
	return p, err
}
