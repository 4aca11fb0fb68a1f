package miner

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/client"
)

// ErrNotRegistered is returned by Join for a hotkey without a UID on the
// subnet and no coldkey to register it.
var ErrNotRegistered = errors.New("hotkey is not registered")

const (
	// FeeFloor is the hotkey balance below which Join tops it up: the
	// hotkey pays the fees of its own transactions (serve, weights).
	FeeFloor = agr.Unit / 100
	// FeeTopUp is what the coldkey sends it then.
	FeeTopUp = agr.Unit
	// enrollTimeout bounds each transaction Join and Publish wait for.
	enrollTimeout = 60 * time.Second
)

// Enrollment makes a hotkey a serving neuron of a subnet: the one way
// `agora miner` and the devnet bring a miner onto the chain.
type Enrollment struct {
	Chain  *client.Client
	Netuid uint32
	Hotkey ed25519.PrivateKey
	// Coldkey registers the hotkey if it has no UID yet and tops its
	// balance up for fees; nil: the hotkey must be registered already.
	Coldkey ed25519.PrivateKey
}

// Join funds the hotkey for fees when it runs low and registers it if it
// is not yet registered, and returns the subnet's metagraph as read before
// (its parameters pin the model and the price a miner serves at).
func (e Enrollment) Join(ctx context.Context) (*tx.Metagraph, error) {
	mg, err := e.Chain.Metagraph(ctx, e.Netuid, 0)
	if err != nil {
		return nil, err
	}
	self := addressOf(e.Hotkey)
	if e.Coldkey != nil {
		if acc, _, err := e.Chain.Account(ctx, self, false); err == nil && acc.Balance < FeeFloor {
			if err := e.send(ctx, e.Coldkey, tx.Transfer(self, FeeTopUp)); err != nil {
				return nil, fmt.Errorf("fund hotkey for fees: %w", err)
			}
		}
	}
	if registered(mg, self) {
		return mg, nil
	}
	if e.Coldkey == nil {
		return nil, fmt.Errorf("%w: %s on subnet %d", ErrNotRegistered, self, e.Netuid)
	}
	chainID, err := e.Chain.ChainID(ctx)
	if err != nil {
		return nil, err
	}
	proof := tx.ProveHotkey(e.Hotkey, chainID, e.Netuid, addressOf(e.Coldkey))
	if err := e.send(ctx, e.Coldkey, tx.NeuronRegister(e.Netuid, proof, 0)); err != nil {
		return nil, fmt.Errorf("register: %w", err)
	}
	return mg, nil
}

// Publish puts where the hotkey serves on chain: its endpoint, its X25519
// key for sealed requests and the model it serves.
func (e Enrollment) Publish(ctx context.Context, endpoint string, x25519 []byte, modelID string) error {
	if err := e.send(ctx, e.Hotkey, tx.NeuronServe(e.Netuid, endpoint, x25519, modelID)); err != nil {
		return fmt.Errorf("publish endpoint: %w", err)
	}
	return nil
}

func (e Enrollment) send(ctx context.Context, key ed25519.PrivateKey, m *tx.Msg) error {
	ctx, cancel := context.WithTimeout(ctx, enrollTimeout)
	defer cancel()
	_, err := e.Chain.SendAndWait(ctx, key, []*tx.Msg{m}, client.SendOptions{})
	return err
}

func registered(mg *tx.Metagraph, hot address.Address) bool {
	for _, n := range mg.Neurons {
		if a, err := address.FromBytes(n.Hotkey); err == nil && a == hot {
			return true
		}
	}
	return false
}

func addressOf(k ed25519.PrivateKey) address.Address {
	return address.FromPubKey(k.Public().(ed25519.PublicKey))
}
