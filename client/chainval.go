package client

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/chain/tx"
)

// ErrNoChainValidator is returned when an operator runs no chain validator.
var ErrNoChainValidator = errors.New("no chain validator")

// ChainValidator reads the chain validator operated by operator; with
// prove the record (or its absence) is checked against a signed app hash.
func (c *Client) ChainValidator(ctx context.Context, operator address.Address, prove bool) (*tx.ChainValidator, *Proof, error) {
	raw, p, _, err := c.Query(ctx, tx.QueryChainValidator+operator.String(), nil, 0, prove)
	if err != nil {
		return nil, nil, err
	}
	if raw == nil {
		return nil, p, fmt.Errorf("%w operated by %s", ErrNoChainValidator, operator)
	}
	v := &tx.ChainValidator{}
	if err := proto.Unmarshal(raw, v); err != nil {
		return nil, nil, fmt.Errorf("decode chain validator %s: %w", operator, err)
	}
	return v, p, nil
}

// ChainValidators lists every chain validator at one committed height. The
// list itself is an aggregate the node computes; with prove each record is
// then proven at that same height and must match the list byte for byte,
// so a node cannot invent, drop a field of, or alter an entry (it could
// still leave one out: compare the active set with ValidatorSet).
func (c *Client) ChainValidators(ctx context.Context, prove bool) (*tx.ChainValidatorList, error) {
	raw, _, h, err := c.Query(ctx, tx.QueryChainValidators, nil, 0, false)
	if err != nil {
		return nil, err
	}
	l := &tx.ChainValidatorList{}
	if err := proto.Unmarshal(raw, l); err != nil {
		return nil, fmt.Errorf("decode chain validator list: %w", err)
	}
	if l.Height == 0 {
		l.Height = h
	}
	if !prove {
		return l, nil
	}
	for _, v := range l.Validators {
		op, err := address.FromBytes(v.Operator)
		if err != nil {
			return nil, fmt.Errorf("%w: list entry with operator %x", ErrProof, v.Operator)
		}
		got, _, _, err := c.Query(ctx, tx.QueryChainValidator+op.String(), nil, l.Height, true)
		if err != nil {
			return nil, err
		}
		want, err := tx.Marshal(v)
		if err != nil {
			return nil, err
		}
		if string(got) != string(want) {
			return nil, fmt.Errorf("%w: listed chain validator %s differs from its proven record", ErrProof, op)
		}
	}
	return l, nil
}

// ValidatorSet reads the chain validator set the app last sent to CometBFT.
func (c *Client) ValidatorSet(ctx context.Context, prove bool) (*tx.ValidatorSet, *Proof, error) {
	s := &tx.ValidatorSet{}
	p, _, err := c.queryProto(ctx, tx.QueryValidatorSet, prove, s)
	return s, p, err
}
