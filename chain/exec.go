package chain

import (
	"errors"
	"fmt"
	"math"
	"strconv"

	abci "github.com/cometbft/cometbft/abci/types"
	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/chainval"
	"github.com/agoranet/agora/chain/channel"
	"github.com/agoranet/agora/chain/emission"
	"github.com/agoranet/agora/chain/royalty"
	"github.com/agoranet/agora/chain/state"
	"github.com/agoranet/agora/chain/subnet"
	"github.com/agoranet/agora/chain/tx"
)

// txResult is the outcome of executing one transaction.
type txResult struct {
	code       uint32
	err        error
	feeCharged uint64
	events     []abci.Event
}

func (r txResult) abci() *abci.ExecTxResult {
	out := &abci.ExecTxResult{Code: r.code, Events: r.events, GasUsed: 1, GasWanted: 1}
	if r.code != tx.CodeOK {
		out.Codespace = tx.Codespace
		out.Log = r.err.Error()
	}
	return out
}

// execTx runs a structurally valid, signature-checked transaction against kv.
//
// The ante checks (chain, size, nonce, fee) reject the transaction outright.
// Once they pass, the fee is burned and the nonce advances even if a message
// then fails, so a failing transaction still pays for its block space.
func (a *App) execTx(kv state.KV, d *tx.Decoded) txResult {
	acc, res := a.ante(kv, d)
	if res.code != tx.CodeOK {
		return res
	}
	b := d.Body
	acc.Nonce++
	acc.Balance -= b.Fee // covered: ante checked it
	if err := bank.SetAccount(kv, d.Sender, acc); err != nil {
		return txResult{code: tx.CodeInternal, err: err}
	}
	// Every transaction that paid its fee is findable by its signer (the
	// explorer's account page and tx_search "tx.signer='agora1…'"), failed
	// ones too: they cost the signer a fee.
	signed := abci.Event{Type: "tx", Attributes: []abci.EventAttribute{
		{Key: "signer", Value: d.Sender.String(), Index: true},
		{Key: "fee", Value: strconv.FormatUint(b.Fee, 10)},
	}}
	res = txResult{feeCharged: b.Fee, events: []abci.Event{signed}}
	msgs := state.NewCache(kv)
	for i, m := range b.Msgs {
		ev, code, err := a.execMsg(msgs, d.Sender, b.SignerPubKey, m)
		if err != nil {
			// The earlier messages' writes are dropped, so are their events.
			res.code, res.err, res.events = code, fmt.Errorf("message %d: %w", i, err), []abci.Event{signed}
			return res
		}
		res.events = append(res.events, ev...)
	}
	if err := msgs.WriteTo(kv); err != nil {
		return txResult{code: tx.CodeInternal, err: err}
	}
	return res
}

// ante runs the checks that refuse a transaction outright, reading but never
// writing kv. They are cheap (one account read), so CheckTx runs them before
// the signature check too: a stale nonce or an unpaid fee costs no ed25519
// verification.
func (a *App) ante(kv state.KVReader, d *tx.Decoded) (*tx.Account, txResult) {
	b := d.Body
	if b.ChainId != a.chainID {
		return nil, txResult{code: tx.CodeWrongChain, err: fmt.Errorf("chain id %q, this chain is %q", b.ChainId, a.chainID)}
	}
	if uint64(len(b.Msgs)) > a.params.MaxMsgsPerTx {
		return nil, txResult{code: tx.CodeTooLarge, err: fmt.Errorf("%d messages, limit %d", len(b.Msgs), a.params.MaxMsgsPerTx)}
	}
	if uint64(len(b.Memo)) > a.params.MaxMemoBytes {
		return nil, txResult{code: tx.CodeTooLarge, err: fmt.Errorf("memo of %d bytes, limit %d", len(b.Memo), a.params.MaxMemoBytes)}
	}
	need, err := tx.TxFee(a.params, b.Msgs)
	if err != nil {
		return nil, txResult{code: tx.CodeOverflow, err: err}
	}
	if b.Fee < need {
		return nil, txResult{code: tx.CodeFeeTooLow, err: fmt.Errorf("fee %d below the required %d", b.Fee, need)}
	}
	acc, err := bank.GetAccount(kv, d.Sender)
	if err != nil {
		return nil, txResult{code: tx.CodeInternal, err: err}
	}
	if b.Nonce != acc.Nonce {
		return nil, txResult{code: tx.CodeBadNonce, err: fmt.Errorf("nonce %d, account %s expects %d", b.Nonce, d.Sender, acc.Nonce)}
	}
	if acc.Balance < b.Fee {
		return nil, txResult{code: tx.CodeInsufficientFunds, err: fmt.Errorf("%w: %s has %d, fee is %d", bank.ErrInsufficientFunds, d.Sender, acc.Balance, b.Fee)}
	}
	if acc.Nonce == math.MaxUint64 {
		return nil, txResult{code: tx.CodeBadNonce, err: fmt.Errorf("account %s has used every nonce", d.Sender)}
	}
	return acc, txResult{}
}

func (a *App) execMsg(kv state.KV, sender address.Address, senderKey []byte, m *tx.Msg) ([]abci.Event, uint32, error) {
	c := &subnet.Ctx{KV: kv, Height: a.height, ChainID: a.chainID, Params: a.params, Royalty: royalty.Payer{}}
	var err error
	var events []abci.Event
	switch s := m.GetSum().(type) {
	case *tx.Msg_Transfer:
		to, err := address.FromBytes(s.Transfer.To)
		if err != nil {
			return nil, tx.CodeMalformed, err
		}
		if err := bank.Transfer(kv, sender, to, s.Transfer.Amount); err != nil {
			return nil, codeOf(err), err
		}
		return []abci.Event{{Type: "transfer", Attributes: []abci.EventAttribute{
			{Key: "sender", Value: sender.String(), Index: true},
			{Key: "recipient", Value: to.String(), Index: true},
			{Key: "amount", Value: strconv.FormatUint(s.Transfer.Amount, 10)},
		}}}, tx.CodeOK, nil
	case *tx.Msg_SubnetRegister:
		var netuid uint32
		if netuid, err = subnet.RegisterSubnet(c, sender, s.SubnetRegister); err == nil {
			events = []abci.Event{{Type: "subnet_register", Attributes: []abci.EventAttribute{
				{Key: "netuid", Value: strconv.FormatUint(uint64(netuid), 10), Index: true},
				{Key: "owner", Value: sender.String(), Index: true},
			}}}
		}
	case *tx.Msg_SubnetSetParams:
		err = subnet.SetParams(c, sender, s.SubnetSetParams)
	case *tx.Msg_SubnetStart:
		err = subnet.Start(c, sender, s.SubnetStart.Netuid)
	case *tx.Msg_NeuronRegister:
		var uid uint16
		if uid, err = subnet.RegisterNeuron(c, sender, s.NeuronRegister); err == nil {
			events = []abci.Event{{Type: "neuron_register", Attributes: []abci.EventAttribute{
				{Key: "netuid", Value: strconv.FormatUint(uint64(s.NeuronRegister.Netuid), 10), Index: true},
				{Key: "uid", Value: strconv.FormatUint(uint64(uid), 10), Index: true},
				{Key: "hotkey", Value: address.FromPubKey(s.NeuronRegister.Hotkey.PubKey).String(), Index: true},
			}}}
		}
	case *tx.Msg_NeuronServe:
		err = subnet.Serve(c, sender, s.NeuronServe)
	case *tx.Msg_StakeAdd:
		if err = subnet.AddStake(c, sender, s.StakeAdd); err == nil {
			// Indexed by coldkey so an account's stakes are found by one
			// tx_search (the explorer's account page).
			events = []abci.Event{{Type: "stake_add", Attributes: []abci.EventAttribute{
				{Key: "coldkey", Value: sender.String(), Index: true},
				{Key: "netuid", Value: strconv.FormatUint(uint64(s.StakeAdd.Netuid), 10)},
				{Key: "hotkey", Value: addrText(s.StakeAdd.Hotkey)},
				{Key: "amount", Value: strconv.FormatUint(s.StakeAdd.Amount, 10)},
			}}}
		}
	case *tx.Msg_StakeRemove:
		err = subnet.RemoveStake(c, sender, s.StakeRemove)
	case *tx.Msg_SetTake:
		err = subnet.SetTake(c, sender, s.SetTake)
	case *tx.Msg_WeightsCommit:
		err = subnet.CommitWeights(c, sender, s.WeightsCommit)
	case *tx.Msg_WeightsReveal:
		err = subnet.RevealWeights(c, sender, s.WeightsReveal)
	case *tx.Msg_WeightsSet:
		err = subnet.SetWeights(c, sender, s.WeightsSet)
	case *tx.Msg_ChannelOpen:
		var id uint64
		if id, err = channel.Open(c, sender, senderKey, s.ChannelOpen); err == nil {
			events = []abci.Event{{Type: "channel_open", Attributes: []abci.EventAttribute{
				{Key: "channel_id", Value: strconv.FormatUint(id, 10), Index: true},
				{Key: "payer", Value: sender.String(), Index: true},
				{Key: "payee", Value: addrText(s.ChannelOpen.Payee), Index: true},
			}}}
		}
	case *tx.Msg_ChannelTopup:
		err = channel.Topup(c, sender, s.ChannelTopup)
	case *tx.Msg_ChannelClaim:
		var settled uint64
		if settled, err = channel.Claim(c, sender, s.ChannelClaim.Voucher, s.ChannelClaim.Amount); err == nil {
			events = []abci.Event{{Type: "channel_claim", Attributes: []abci.EventAttribute{
				{Key: "channel_id", Value: strconv.FormatUint(s.ChannelClaim.Voucher.ChannelId, 10), Index: true},
				{Key: "settled", Value: strconv.FormatUint(settled, 10)},
			}}}
		}
	case *tx.Msg_ChannelClose:
		_, err = channel.Close(c, sender, s.ChannelClose.ChannelId)
	case *tx.Msg_ChainValidatorCreate:
		if err = chainval.Create(c, sender, s.ChainValidatorCreate); err == nil {
			events = []abci.Event{{Type: "chain_validator_create", Attributes: []abci.EventAttribute{
				{Key: "operator", Value: sender.String(), Index: true},
				{Key: "consensus_address", Value: fmt.Sprintf("%X", tx.ConsensusAddress(s.ChainValidatorCreate.ConsensusPubKey)), Index: true},
				{Key: "bond", Value: strconv.FormatUint(s.ChainValidatorCreate.Bond, 10)},
			}}}
		}
	case *tx.Msg_ChainValidatorBond:
		err = chainval.Bond(c, sender, s.ChainValidatorBond.Amount)
	case *tx.Msg_ChainValidatorUnbond:
		err = chainval.Unbond(c, sender, s.ChainValidatorUnbond.Amount)
	case *tx.Msg_ChainValidatorEdit:
		err = chainval.Edit(c, sender, s.ChainValidatorEdit.Moniker)
	case *tx.Msg_ChainValidatorUnjail:
		err = chainval.Unjail(c, sender)
	case *tx.Msg_ModelRegister:
		events, err = royalty.RegisterModel(c, sender, s.ModelRegister)
	case *tx.Msg_ModelUpdate:
		err = royalty.UpdateModel(c, sender, s.ModelUpdate)
	case *tx.Msg_ModelSharesTransfer:
		events, err = royalty.TransferShares(c, sender, s.ModelSharesTransfer)
	case *tx.Msg_ModelClaim:
		events, err = royalty.ClaimModel(c, sender, s.ModelClaim.ModelId)
	case *tx.Msg_ModelOffer:
		events, err = royalty.Offer(c, sender, s.ModelOffer)
	case *tx.Msg_ModelBuy:
		events, err = royalty.Buy(c, sender, s.ModelBuy)
	case *tx.Msg_DataRegister:
		events, err = royalty.RegisterDataset(c, sender, s.DataRegister)
	case *tx.Msg_DataContribute:
		events, err = royalty.Contribute(c, s.DataContribute)
	case *tx.Msg_DataClaim:
		events, err = royalty.ClaimDataset(c, sender, s.DataClaim.Root)
	default:
		return nil, tx.CodeMalformed, fmt.Errorf("unknown message %T", s)
	}
	if err != nil {
		return nil, codeOf(err), err
	}
	return events, tx.CodeOK, nil
}

// codeOf maps a module error to its ABCI code.
func codeOf(err error) uint32 {
	for _, c := range []struct {
		target error
		code   uint32
	}{
		{bank.ErrInvariant, tx.CodeInternal},
		{agr.ErrOverflow, tx.CodeOverflow},
		{bank.ErrInsufficientFunds, tx.CodeInsufficientFunds},
		{subnet.ErrNotFound, tx.CodeNotFound},
		{subnet.ErrUnauthorized, tx.CodeUnauthorized},
		{subnet.ErrInvalid, tx.CodeInvalid},
		{subnet.ErrPriceMoved, tx.CodePriceMoved},
		{subnet.ErrFull, tx.CodeFull},
		{subnet.ErrRateLimited, tx.CodeRateLimited},
		{subnet.ErrExists, tx.CodeExists},
		{subnet.ErrWindow, tx.CodeWindow},
		{chainval.ErrJailed, tx.CodeJailed},
		{chainval.ErrTombstoned, tx.CodeTombstoned},
	} {
		if errors.Is(err, c.target) {
			return c.code
		}
	}
	return tx.CodeInternal
}

// initGenesis writes the genesis state and returns the first chain
// validator set. g must have passed ValidateFor(chainID).
func initGenesis(kv state.KV, chainID string, g *Genesis, p *tx.Params) ([]abci.ValidatorUpdate, error) {
	if err := kv.Set(keyChainID, []byte(chainID)); err != nil {
		return nil, err
	}
	if err := setProto(kv, tx.ParamsKey(), p); err != nil {
		return nil, err
	}
	var total uint64
	for _, ga := range g.Accounts {
		if err := bank.SetAccount(kv, ga.Address, &tx.Account{Balance: ga.Balance}); err != nil {
			return nil, err
		}
		var err error
		if total, err = bank.Grow("genesis balances", total, ga.Balance); err != nil {
			return nil, err
		}
	}
	if err := setProto(kv, tx.SupplyKey(), &tx.Supply{Genesis: total}); err != nil {
		return nil, err
	}
	entries := make([]chainval.GenesisEntry, len(g.Validators))
	for i, v := range g.Validators {
		entries[i] = chainval.GenesisEntry{Operator: v.Operator(), ConsensusPubKey: v.ConsensusPubKey, Moniker: v.Moniker, Bond: v.Bond}
	}
	res, err := chainval.InitGenesis(&subnet.Ctx{KV: kv, Height: 0, ChainID: chainID, Params: p}, entries)
	if err != nil {
		return nil, err
	}
	return res.Updates, nil
}

// endBlock records burned fees and mints the block's emission into the
// pending pool, which the incentive machine distributes.
// It then runs the chain validators' end of block (evidence, downtime,
// unbonding payouts, the active set), returning CometBFT's set updates.
func endBlock(c *subnet.Ctx, burned uint64, misbehavior []abci.Misbehavior, votes []abci.VoteInfo) ([]abci.Event, []abci.ValidatorUpdate, error) {
	events, err := mintAndDistribute(c, burned)
	if err != nil {
		return nil, nil, err
	}
	cv, err := chainval.EndBlock(c, misbehavior, votes)
	if err != nil {
		return nil, nil, fmt.Errorf("chain validators: %w", err)
	}
	return append(events, cv.Events...), cv.Updates, nil
}

func mintAndDistribute(c *subnet.Ctx, burned uint64) ([]abci.Event, error) {
	kv, p, height := c.KV, c.Params, int64(c.Height)
	s, err := loadSupply(kv)
	if err != nil {
		return nil, err
	}
	issued, err := bank.Grow("supply genesis + minted", s.Genesis, s.Minted)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", bank.ErrInvariant, err)
	}
	reward := emission.BlockReward(p.BlockRewardBase, p.SupplyCap, issued)
	// reward ≤ cap − issued, so none of these can overflow on a sound
	// chain; one that does is corrupt state and halts the node.
	for _, f := range []struct {
		name string
		v    *uint64
		add  uint64
	}{{"supply minted", &s.Minted, reward}, {"supply pending_emission", &s.PendingEmission, reward}, {"supply burned", &s.Burned, burned}} {
		if *f.v, err = bank.Grow(f.name, *f.v, f.add); err != nil {
			return nil, fmt.Errorf("%w: %v", bank.ErrInvariant, err)
		}
	}
	s.LastBlockEmission = reward
	if err := setProto(kv, tx.SupplyKey(), s); err != nil {
		return nil, err
	}
	events := []abci.Event{{Type: "emission", Attributes: []abci.EventAttribute{
		{Key: "height", Value: strconv.FormatInt(height, 10)},
		{Key: "minted", Value: strconv.FormatUint(reward, 10)},
		{Key: "burned", Value: strconv.FormatUint(burned, 10)},
	}}}
	more, err := subnet.EndBlock(c)
	if err != nil {
		return nil, err
	}
	closed, err := royalty.EndBlock(c)
	if err != nil {
		return nil, fmt.Errorf("offerings: %w", err)
	}
	return append(append(events, more...), closed...), nil
}

func setProto(kv state.KV, key []byte, m proto.Message) error { return state.SetRecord(kv, key, m) }

// getProto reads a record that must exist.
func getProto(kv state.KVReader, key []byte, m proto.Message) error {
	found, err := state.GetRecord(kv, key, m)
	if err == nil && !found {
		err = fmt.Errorf("state record %x missing", key)
	}
	return err
}

func loadParams(kv state.KVReader) (*tx.Params, error) {
	p := &tx.Params{}
	return p, getProto(kv, tx.ParamsKey(), p)
}

func loadSupply(kv state.KVReader) (*tx.Supply, error) { return bank.GetSupply(kv) }

func addrText(b []byte) string {
	a, err := address.FromBytes(b)
	if err != nil {
		return fmt.Sprintf("%x", b)
	}
	return a.String()
}
