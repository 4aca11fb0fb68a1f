package tx

import "github.com/agoranet/agora/address"

// Message constructors: one place that knows each Msg's oneof wrapper, so
// the CLI, services and tests build messages by what they mean rather than
// by nesting protobuf structs. Each returns a message Decode would accept
// given valid arguments; none checks them (the chain does).

// SubnetRegister creates a subnet whose owner hotkey is proved by proof;
// maxLock 0 accepts any lock cost.
func SubnetRegister(name string, proof *HotkeyProof, maxLock uint64) *Msg {
	return &Msg{Sum: &Msg_SubnetRegister{SubnetRegister: &MsgSubnetRegister{Name: name, OwnerHotkey: proof, MaxLock: maxLock}}}
}

// SubnetSetParams replaces a subnet's hyperparameters.
func SubnetSetParams(netuid uint32, p *SubnetParams) *Msg {
	return &Msg{Sum: &Msg_SubnetSetParams{SubnetSetParams: &MsgSubnetSetParams{Netuid: netuid, Params: p}}}
}

// SubnetStart turns on emission to a subnet.
func SubnetStart(netuid uint32) *Msg {
	return &Msg{Sum: &Msg_SubnetStart{SubnetStart: &MsgSubnetStart{Netuid: netuid}}}
}

// NeuronRegister gives the proved hotkey a UID on netuid; maxBurn 0 accepts
// any burn.
func NeuronRegister(netuid uint32, proof *HotkeyProof, maxBurn uint64) *Msg {
	return &Msg{Sum: &Msg_NeuronRegister{NeuronRegister: &MsgNeuronRegister{Netuid: netuid, Hotkey: proof, MaxBurn: maxBurn}}}
}

// NeuronServe publishes where the signing hotkey serves, its X25519 key for
// sealed requests (nil: none) and the model it serves.
func NeuronServe(netuid uint32, endpoint string, x25519 []byte, modelID string) *Msg {
	return &Msg{Sum: &Msg_NeuronServe{NeuronServe: &MsgNeuronServe{Netuid: netuid, Endpoint: endpoint, X25519PubKey: x25519, ModelId: modelID}}}
}

// StakeAdd moves amount from the signing coldkey into hotkey's pool on netuid.
func StakeAdd(hotkey address.Address, netuid uint32, amount uint64) *Msg {
	return &Msg{Sum: &Msg_StakeAdd{StakeAdd: &MsgStakeAdd{Hotkey: hotkey.Bytes(), Netuid: netuid, Amount: amount}}}
}

// StakeRemove withdraws amount of the signer's stake in hotkey's pool on netuid.
func StakeRemove(hotkey address.Address, netuid uint32, amount uint64) *Msg {
	return &Msg{Sum: &Msg_StakeRemove{StakeRemove: &MsgStakeRemove{Hotkey: hotkey.Bytes(), Netuid: netuid, Amount: amount}}}
}

// SetTake sets the share of dividends, in basis points, hotkey keeps.
func SetTake(hotkey address.Address, takeBps uint32) *Msg {
	return &Msg{Sum: &Msg_SetTake{SetTake: &MsgSetTake{Hotkey: hotkey.Bytes(), TakeBps: takeBps}}}
}

// WeightsSet sets weights directly on a subnet with commit-reveal off.
func WeightsSet(netuid uint32, uids, values []uint32, version uint64) *Msg {
	return &Msg{Sum: &Msg_WeightsSet{WeightsSet: &MsgWeightsSet{Netuid: netuid, Uids: uids, Values: values, VersionKey: version}}}
}

// WeightsCommit commits to a hash of weights (WeightsHash).
func WeightsCommit(netuid uint32, hash []byte) *Msg {
	return &Msg{Sum: &Msg_WeightsCommit{WeightsCommit: &MsgWeightsCommit{Netuid: netuid, Hash: hash}}}
}

// WeightsReveal opens a commit with the weights, salt and version it hashed.
func WeightsReveal(netuid uint32, uids, values []uint32, salt []byte, version uint64) *Msg {
	return &Msg{Sum: &Msg_WeightsReveal{WeightsReveal: &MsgWeightsReveal{Netuid: netuid, Uids: uids, Values: values, Salt: salt, VersionKey: version}}}
}

// ChannelOpen escrows deposit for payee on netuid until expiry (a height).
func ChannelOpen(payee address.Address, netuid uint32, deposit, expiry uint64) *Msg {
	return &Msg{Sum: &Msg_ChannelOpen{ChannelOpen: &MsgChannelOpen{Payee: payee.Bytes(), Netuid: netuid, Deposit: deposit, ExpiryHeight: expiry}}}
}

// ChannelTopup adds amount to a channel; expiry 0 keeps its expiry.
func ChannelTopup(channel, amount, expiry uint64) *Msg {
	return &Msg{Sum: &Msg_ChannelTopup{ChannelTopup: &MsgChannelTopup{ChannelId: channel, Amount: amount, ExpiryHeight: expiry}}}
}

// ChannelClaim settles a voucher (payee).
func ChannelClaim(v *Voucher) *Msg {
	return &Msg{Sum: &Msg_ChannelClaim{ChannelClaim: &MsgChannelClaim{Voucher: v}}}
}

// ChannelClose returns an expired channel's unclaimed deposit (payer).
func ChannelClose(channel uint64) *Msg {
	return &Msg{Sum: &Msg_ChannelClose{ChannelClose: &MsgChannelClose{ChannelId: channel}}}
}

// ModelRegister registers a model and issues its shares to the signer.
func ModelRegister(m *MsgModelRegister) *Msg { return &Msg{Sum: &Msg_ModelRegister{ModelRegister: m}} }

// ModelUpdate replaces a model's name, license and URLs (owner).
func ModelUpdate(modelID, name, license string, urls []string) *Msg {
	return &Msg{Sum: &Msg_ModelUpdate{ModelUpdate: &MsgModelUpdate{ModelId: modelID, Name: name, License: license, Urls: urls}}}
}

// ModelSharesTransfer moves shares of a model to another address.
func ModelSharesTransfer(modelID string, to address.Address, shares uint64) *Msg {
	return &Msg{Sum: &Msg_ModelSharesTransfer{ModelSharesTransfer: &MsgModelSharesTransfer{ModelId: modelID, To: to.Bytes(), Shares: shares}}}
}

// ModelClaim pays the signer its royalty from a model.
func ModelClaim(modelID string) *Msg {
	return &Msg{Sum: &Msg_ModelClaim{ModelClaim: &MsgModelClaim{ModelId: modelID}}}
}

// ModelOffer opens an initial model offering (owner).
func ModelOffer(m *MsgModelOffer) *Msg { return &Msg{Sum: &Msg_ModelOffer{ModelOffer: m}} }

// ModelBuy buys shares in a model's open offering for at most maxCost.
func ModelBuy(modelID string, shares, maxCost uint64) *Msg {
	return &Msg{Sum: &Msg_ModelBuy{ModelBuy: &MsgModelBuy{ModelId: modelID, Shares: shares, MaxCost: maxCost}}}
}

// DataRegister registers a dataset.
func DataRegister(m *MsgDataRegister) *Msg { return &Msg{Sum: &Msg_DataRegister{DataRegister: m}} }

// DataContribute credits a proved leaf's contributor in a dataset.
func DataContribute(root []byte, leaf *DataLeaf, index uint64, proof [][]byte) *Msg {
	return &Msg{Sum: &Msg_DataContribute{DataContribute: &MsgDataContribute{Root: root, Leaf: leaf, Index: index, Proof: proof}}}
}

// DataClaim pays the signer its royalty from a dataset.
func DataClaim(root []byte) *Msg {
	return &Msg{Sum: &Msg_DataClaim{DataClaim: &MsgDataClaim{Root: root}}}
}
