package chain

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	abci "github.com/cometbft/cometbft/abci/types"
	cmtcrypto "github.com/cometbft/cometbft/proto/tendermint/crypto"
	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/chainval"
	"github.com/agoranet/agora/chain/proof"
	"github.com/agoranet/agora/chain/royalty"
	"github.com/agoranet/agora/chain/state"
	"github.com/agoranet/agora/chain/subnet"
	"github.com/agoranet/agora/chain/tx"
)

// Query answers state reads, with ICS-23 proofs when asked.
func (a *App) Query(_ context.Context, req *abci.RequestQuery) (*abci.ResponseQuery, error) {
	if strings.HasPrefix(req.Path, tx.QueryNonce) {
		return a.queryPending(req.Path[len(tx.QueryNonce):]), nil
	}
	if strings.HasPrefix(req.Path, tx.QueryMetagraph) || req.Path == tx.QuerySubnets || req.Path == tx.QueryChainValidators ||
		req.Path == tx.QueryModels || req.Path == tx.QueryDatasets {
		return a.queryAggregate(req), nil
	}
	key, err := tx.QueryKey(req.Path, req.Data)
	if err != nil {
		return &abci.ResponseQuery{Code: tx.CodeUnknownQuery, Codespace: tx.Codespace, Log: err.Error()}, nil
	}
	p, err := a.store.Query(key, req.Height, req.Prove)
	if err != nil {
		code := tx.CodeInternal
		if errors.Is(err, state.ErrVersionUnavailable) {
			code = tx.CodeNotAvailable
		}
		return &abci.ResponseQuery{Code: code, Codespace: tx.Codespace, Log: err.Error()}, nil
	}
	resp := &abci.ResponseQuery{Code: tx.CodeOK, Key: key, Value: p.Value, Height: p.Version}
	if p.Proof != nil {
		bz, err := p.Proof.Marshal()
		if err != nil {
			return &abci.ResponseQuery{Code: tx.CodeInternal, Codespace: tx.Codespace, Log: fmt.Sprintf("encode proof: %v", err)}, nil
		}
		resp.ProofOps = &cmtcrypto.ProofOps{Ops: []cmtcrypto.ProofOp{{Type: proof.OpType, Key: key, Data: bz}}}
	}
	return resp, nil
}

func (a *App) queryPending(addrText string) *abci.ResponseQuery {
	addr, err := address.Parse(addrText)
	if err != nil {
		return &abci.ResponseQuery{Code: tx.CodeUnknownQuery, Codespace: tx.Codespace, Log: err.Error()}
	}
	acc, err := bank.GetAccount(a.check, addr)
	if err != nil {
		return &abci.ResponseQuery{Code: tx.CodeInternal, Codespace: tx.Codespace, Log: err.Error()}
	}
	raw, err := tx.Marshal(acc)
	if err != nil {
		return &abci.ResponseQuery{Code: tx.CodeInternal, Codespace: tx.Codespace, Log: err.Error()}
	}
	return &abci.ResponseQuery{Code: tx.CodeOK, Key: tx.AccountKey(addr), Value: raw, Height: a.store.Version()}
}

func (a *App) queryAggregate(req *abci.RequestQuery) *abci.ResponseQuery {
	fail := func(code uint32, err error) *abci.ResponseQuery {
		return &abci.ResponseQuery{Code: code, Codespace: tx.Codespace, Log: err.Error()}
	}
	view, version, err := a.store.View(req.Height)
	if err != nil {
		return fail(tx.CodeNotAvailable, err)
	}
	var msg proto.Message
	if req.Path == tx.QueryModels {
		all, err := royalty.Models(view)
		if err != nil {
			return fail(tx.CodeInternal, err)
		}
		msg = &tx.ModelList{Models: all, Height: version}
	} else if req.Path == tx.QueryDatasets {
		all, err := royalty.Datasets(view)
		if err != nil {
			return fail(tx.CodeInternal, err)
		}
		msg = &tx.DatasetList{Datasets: all, Height: version}
	} else if req.Path == tx.QueryChainValidators {
		all, err := chainval.All(view)
		if err != nil {
			return fail(tx.CodeInternal, err)
		}
		msg = &tx.ChainValidatorList{Validators: all, Height: version}
	} else if req.Path == tx.QuerySubnets {
		subs, err := subnet.Subnets(view)
		if err != nil {
			return fail(tx.CodeInternal, err)
		}
		list := &tx.SubnetList{Subnets: subs}
		msg = list
	} else {
		netuid, err := strconv.ParseUint(req.Path[len(tx.QueryMetagraph):], 10, 32)
		if err != nil {
			return fail(tx.CodeUnknownQuery, fmt.Errorf("metagraph netuid %q: %v", req.Path[len(tx.QueryMetagraph):], err))
		}
		mg, err := subnet.Metagraph(view, uint32(netuid))
		if errors.Is(err, subnet.ErrNotFound) {
			return fail(tx.CodeNotFound, err)
		}
		if err != nil {
			return fail(tx.CodeInternal, err)
		}
		mg.Height = version
		msg = mg
	}
	raw, err := tx.Marshal(msg)
	if err != nil {
		return fail(tx.CodeInternal, err)
	}
	return &abci.ResponseQuery{Code: tx.CodeOK, Value: raw, Height: version}
}
