package chain

import (
	"context"
	"strconv"

	"errors"
	"fmt"
	"google.golang.org/protobuf/proto"
	"strings"

	abci "github.com/cometbft/cometbft/abci/types"
	cmtcrypto "github.com/cometbft/cometbft/proto/tendermint/crypto"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/channel"
	"github.com/agoranet/agora/chain/state"
	"github.com/agoranet/agora/chain/subnet"
	"github.com/agoranet/agora/chain/tx"
)

// ProofOpType names the single proof op Agora returns: an ICS-23 IAVL proof
// of the key against the app hash.
const ProofOpType = "ics23:iavl"

// Query paths. Each resolves to one state key, returned as raw stored bytes so
// a client can check the value against the proof.
const (
	QueryAccount  = "/account/" // + bech32 address; value: tx.Account (absent: zero account)
	QueryBalance  = "/balance/" // same key as /account/
	QuerySupply   = "/supply"   // value: tx.Supply
	QueryEmission = "/emission" // same key as /supply (last_block_emission, pending_emission)
	QueryParams   = "/params"   // value: tx.Params
	QueryStore    = "/store"    // request data: raw key
	QueryChannel  = "/channel/" // + channel id; value: tx.Channel (absent: closed or never opened)
	// QueryNonce reads the mempool's pending view (+ bech32 address): the
	// account as it will be after the txs already accepted. Not provable.
	QueryNonce = "/nonce/"
	// QueryMetagraph (+ netuid) answers a tx.Metagraph: the subnet and every
	// UID with its stake, read from one committed version. Aggregated, so not provable.
	QueryMetagraph = "/metagraph/"
	// QuerySubnets answers a tx.SubnetList of every subnet record.
	QuerySubnets = "/subnets"
)

// QueryKey maps a query path (and data) to its state key.
func QueryKey(path string, data []byte) ([]byte, error) {
	switch {
	case strings.HasPrefix(path, QueryAccount), strings.HasPrefix(path, QueryBalance):
		s := path[strings.LastIndexByte(path, '/')+1:]
		addr, err := address.Parse(s)
		if err != nil {
			return nil, err
		}
		return bank.AccountKey(addr), nil
	case path == QuerySupply, path == QueryEmission:
		return SupplyKey(), nil
	case path == QueryParams:
		return ParamsKey(), nil
	case strings.HasPrefix(path, QueryChannel):
		id, err := strconv.ParseUint(path[len(QueryChannel):], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("channel id %q: %v", path[len(QueryChannel):], err)
		}
		return channel.Key(id), nil
	case path == QueryStore:
		if len(data) == 0 {
			return nil, errors.New("store query needs a key in data")
		}
		return data, nil
	default:
		return nil, fmt.Errorf("unknown query path %q", path)
	}
}

// Query answers state reads, with ICS-23 proofs when asked.
func (a *App) Query(_ context.Context, req *abci.RequestQuery) (*abci.ResponseQuery, error) {
	if strings.HasPrefix(req.Path, QueryNonce) {
		return a.queryPending(req.Path[len(QueryNonce):]), nil
	}
	if strings.HasPrefix(req.Path, QueryMetagraph) || req.Path == QuerySubnets {
		return a.queryAggregate(req), nil
	}
	key, err := QueryKey(req.Path, req.Data)
	if err != nil {
		return &abci.ResponseQuery{Code: CodeUnknownQuery, Codespace: Codespace, Log: err.Error()}, nil
	}
	p, err := a.store.Query(key, req.Height, req.Prove)
	if err != nil {
		code := CodeInternal
		if errors.Is(err, state.ErrVersionUnavailable) {
			code = CodeNotAvailable
		}
		return &abci.ResponseQuery{Code: code, Codespace: Codespace, Log: err.Error()}, nil
	}
	resp := &abci.ResponseQuery{Code: CodeOK, Key: key, Value: p.Value, Height: p.Version}
	if p.Proof != nil {
		bz, err := p.Proof.Marshal()
		if err != nil {
			return &abci.ResponseQuery{Code: CodeInternal, Codespace: Codespace, Log: fmt.Sprintf("encode proof: %v", err)}, nil
		}
		resp.ProofOps = &cmtcrypto.ProofOps{Ops: []cmtcrypto.ProofOp{{Type: ProofOpType, Key: key, Data: bz}}}
	}
	return resp, nil
}

func (a *App) queryPending(addrText string) *abci.ResponseQuery {
	addr, err := address.Parse(addrText)
	if err != nil {
		return &abci.ResponseQuery{Code: CodeUnknownQuery, Codespace: Codespace, Log: err.Error()}
	}
	acc, err := bank.GetAccount(a.check, addr)
	if err != nil {
		return &abci.ResponseQuery{Code: CodeInternal, Codespace: Codespace, Log: err.Error()}
	}
	raw, err := tx.Marshal(acc)
	if err != nil {
		return &abci.ResponseQuery{Code: CodeInternal, Codespace: Codespace, Log: err.Error()}
	}
	return &abci.ResponseQuery{Code: CodeOK, Key: bank.AccountKey(addr), Value: raw, Height: a.store.Version()}
}

func (a *App) queryAggregate(req *abci.RequestQuery) *abci.ResponseQuery {
	fail := func(code uint32, err error) *abci.ResponseQuery {
		return &abci.ResponseQuery{Code: code, Codespace: Codespace, Log: err.Error()}
	}
	view, version, err := a.store.View(req.Height)
	if err != nil {
		return fail(CodeNotAvailable, err)
	}
	var msg proto.Message
	if req.Path == QuerySubnets {
		subs, err := subnet.Subnets(view)
		if err != nil {
			return fail(CodeInternal, err)
		}
		list := &tx.SubnetList{Subnets: subs}
		msg = list
	} else {
		netuid, err := strconv.ParseUint(req.Path[len(QueryMetagraph):], 10, 32)
		if err != nil {
			return fail(CodeUnknownQuery, fmt.Errorf("metagraph netuid %q: %v", req.Path[len(QueryMetagraph):], err))
		}
		mg, err := subnet.Metagraph(view, uint32(netuid))
		if errors.Is(err, subnet.ErrNotFound) {
			return fail(CodeNotFound, err)
		}
		if err != nil {
			return fail(CodeInternal, err)
		}
		mg.Height = version
		msg = mg
	}
	raw, err := tx.Marshal(msg)
	if err != nil {
		return fail(CodeInternal, err)
	}
	return &abci.ResponseQuery{Code: CodeOK, Value: raw, Height: version}
}
