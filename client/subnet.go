package client

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/chain/tx"
)

// Metagraph reads a subnet and all its UIDs with their stake, from one
// committed version (height 0: the latest).
func (c *Client) Metagraph(ctx context.Context, netuid uint32, height int64) (*tx.Metagraph, error) {
	raw, _, h, err := c.Query(ctx, tx.QueryMetagraph+strconv.FormatUint(uint64(netuid), 10), nil, height, false)
	if qe := (*QueryError)(nil); errors.As(err, &qe) && qe.Code == tx.CodeNotFound {
		return nil, fmt.Errorf("subnet %d: %w (%v)", netuid, ErrNoSubnet, err)
	}
	if err != nil {
		return nil, err
	}
	mg := &tx.Metagraph{}
	if err := proto.Unmarshal(raw, mg); err != nil {
		return nil, fmt.Errorf("decode metagraph: %w", err)
	}
	mg.Height = h
	return mg, nil
}

// Subnets lists every subnet.
func (c *Client) Subnets(ctx context.Context) ([]*tx.Subnet, error) {
	raw, _, _, err := c.Query(ctx, tx.QuerySubnets, nil, 0, false)
	if err != nil {
		return nil, err
	}
	l := &tx.SubnetList{}
	if err := proto.Unmarshal(raw, l); err != nil {
		return nil, fmt.Errorf("decode subnets: %w", err)
	}
	return l.Subnets, nil
}

// ErrNoChannel is returned for channels that are closed or were never opened.
var ErrNoChannel = errors.New("no such channel")

// Channel reads a payment channel, proven when asked.
func (c *Client) Channel(ctx context.Context, id uint64, prove bool) (*tx.Channel, error) {
	raw, _, _, err := c.Query(ctx, tx.QueryChannel+strconv.FormatUint(id, 10), nil, 0, prove)
	if err != nil {
		return nil, err
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("channel %d: %w", id, ErrNoChannel)
	}
	ch := &tx.Channel{}
	if err := proto.Unmarshal(raw, ch); err != nil {
		return nil, fmt.Errorf("decode channel %d: %w", id, err)
	}
	return ch, nil
}

// ErrNoSubnet is returned for a subnet that does not exist.
var ErrNoSubnet = errors.New("no such subnet")

// Subnet reads one subnet record (owner, hyperparameters, price), proven
// when asked: an agent checks a gateway's price against it.
func (c *Client) Subnet(ctx context.Context, netuid uint32, prove bool) (*tx.Subnet, error) {
	raw, _, _, err := c.Query(ctx, tx.QueryStore, tx.SubnetKey(netuid), 0, prove)
	if err != nil {
		return nil, err
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("subnet %d: %w", netuid, ErrNoSubnet)
	}
	s := &tx.Subnet{}
	if err := proto.Unmarshal(raw, s); err != nil {
		return nil, fmt.Errorf("decode subnet %d: %w", netuid, err)
	}
	return s, nil
}
