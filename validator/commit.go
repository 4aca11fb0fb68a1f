package validator

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/internal/atomicfile"
	"github.com/agoranet/agora/keys"
)

// Commit is a weight commit waiting for its reveal: the weights, salt and
// version its hash covers, and where it landed. It is saved before the
// commit transaction is sent, because a commit whose salt is lost can never
// be revealed; `agora weights commit` and the validator service keep it in
// the same file format, so either can reveal what the other committed.
type Commit struct {
	Netuid     uint32        `json:"netuid"`
	Uids       []uint32      `json:"uids"`
	Values     []uint32      `json:"values"`
	Salt       keys.HexBytes `json:"salt"`
	VersionKey uint64        `json:"version_key"`
	// After is the chain height read before the commit was sent; the
	// commit lands above it. Block is the commit's block once seen (0: sent,
	// inclusion not seen, as after a crash: the chain's neuron record says).
	After uint64 `json:"after,omitempty"`
	Block uint64 `json:"block,omitempty"`
}

// NewCommit makes a commit of weights under a fresh random salt.
func NewCommit(netuid uint32, uids, values []uint32, version uint64) (*Commit, error) {
	salt := make([]byte, 32)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("commit salt: %w", err)
	}
	return &Commit{Netuid: netuid, Uids: uids, Values: values, Salt: salt, VersionKey: version}, nil
}

// CommitMsg is the weights_commit message hotkey signs for c.
func (c *Commit) CommitMsg(hotkey address.Address) *tx.Msg {
	return tx.WeightsCommit(c.Netuid, tx.WeightsHash(hotkey, c.Netuid, c.Uids, c.Values, c.Salt, c.VersionKey))
}

// RevealMsg is the weights_reveal message that opens c.
func (c *Commit) RevealMsg() *tx.Msg {
	return tx.WeightsReveal(c.Netuid, c.Uids, c.Values, c.Salt, c.VersionKey)
}

// SaveCommit writes c to path atomically (a temporary file renamed over
// it, both synced), so a crash leaves the old commit or the new one, never
// half of either.
func SaveCommit(path string, c *Commit) error {
	raw, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Replace(path, raw, 0o600); err != nil {
		return fmt.Errorf("save commit: %w", err)
	}
	return nil
}

// LoadCommit reads a commit SaveCommit wrote. A missing file is an error
// wrapping os.ErrNotExist.
func LoadCommit(path string) (*Commit, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c Commit
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("saved commit %s: %w", path, err)
	}
	return &c, nil
}

// loadPending reads the validator's saved commit, if it keeps one.
func (v *Validator) loadPending() error {
	if v.cfg.CommitPath == "" {
		return nil
	}
	c, err := LoadCommit(v.cfg.CommitPath)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return err
	case c.Netuid != v.cfg.Netuid:
		return fmt.Errorf("saved commit %s is for subnet %d, not %d", v.cfg.CommitPath, c.Netuid, v.cfg.Netuid)
	}
	v.pending = c
	return nil
}

// keep makes c the pending commit and saves it where configured.
func (v *Validator) keep(c *Commit) error {
	v.pending = c
	if v.cfg.CommitPath == "" {
		return nil
	}
	return SaveCommit(v.cfg.CommitPath, c)
}

// forget drops the pending commit: revealed, or its window passed.
func (v *Validator) forget() {
	v.pending = nil
	if v.cfg.CommitPath == "" {
		return
	}
	if err := os.Remove(v.cfg.CommitPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		v.log.Warn("remove saved commit", "err", err.Error())
	}
}

// commitBlock is where the pending commit landed: known since it was
// sent, or read from the chain's record of this neuron's pending commit
// (0: it never landed).
func (v *Validator) commitBlock(mg *tx.Metagraph) uint64 {
	c := v.pending
	if c.Block != 0 {
		return c.Block
	}
	for _, n := range mg.Neurons {
		if hot, err := address.FromBytes(n.Hotkey); err == nil && hot == v.self && n.FirstCommitBlock > c.After {
			return n.FirstCommitBlock
		}
	}
	return 0
}
