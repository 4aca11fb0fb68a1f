package chain

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"
	cmtproto "github.com/cometbft/cometbft/proto/tendermint/types"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain/state"
	"github.com/agoranet/agora/chain/tx"
)

// BenchmarkFinalizeBlockChainValidators measures an empty block's
// FinalizeBlock with a full set of 100 chain validators: 100 commit votes
// (a tenth absent) through the downtime windows, plus one bond that forces
// the active set to be recomputed and diffed.
func BenchmarkFinalizeBlockChainValidators(b *testing.B) {
	const n = 100
	store, _ := state.OpenMem(state.DefaultOptions())
	app, _ := NewApp(store, nil)
	g := Genesis{Params: DefaultParams(1000), Devnet: true}
	ops := make([]ed25519.PrivateKey, n)
	var votes []abci.VoteInfo
	for i := range n {
		seed := make([]byte, 32)
		binary.BigEndian.PutUint32(seed, uint32(i+1))
		ops[i] = ed25519.NewKeyFromSeed(seed)
		seed[31] = 1
		cons := ed25519.NewKeyFromSeed(seed)
		op := address.FromPubKey(ops[i].Public().(ed25519.PublicKey))
		g.Accounts = append(g.Accounts, GenesisAccount{Address: op, Balance: 10_000 * agr.Unit})
		g.Validators = append(g.Validators, SignGenesisValidator(testChain, ops[i], GenesisValidator{
			ConsensusPubKey: cons.Public().(ed25519.PublicKey), Bond: uint64(i+1) * agr.Unit}))
		flag := cmtproto.BlockIDFlagCommit
		if i%10 == 0 {
			flag = cmtproto.BlockIDFlagAbsent
		}
		votes = append(votes, abci.VoteInfo{Validator: abci.Validator{Address: tx.ConsensusAddress(cons.Public().(ed25519.PublicKey))}, BlockIdFlag: flag})
	}
	raw, _ := json.Marshal(g)
	if _, err := app.InitChain(context.Background(), &abci.RequestInitChain{ChainId: testChain, AppStateBytes: raw, InitialHeight: 1}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		body := &tx.TxBody{ChainId: testChain, Nonce: uint64(i), Fee: fee, Msgs: []*tx.Msg{tx.ChainValidatorBond(agr.Unit)}}
		t, err := tx.Sign(ops[n-1], body)
		if err != nil {
			b.Fatal(err)
		}
		res, err := app.FinalizeBlock(context.Background(), &abci.RequestFinalizeBlock{Height: int64(i + 1), Txs: [][]byte{t}, DecidedLastCommit: abci.CommitInfo{Votes: votes}})
		if err != nil || res.TxResults[0].Code != tx.CodeOK {
			b.Fatalf("block %d: %v %v", i+1, err, res.TxResults[0].Log)
		}
		if _, err := app.Commit(context.Background(), &abci.RequestCommit{}); err != nil {
			b.Fatal(err)
		}
	}
}
