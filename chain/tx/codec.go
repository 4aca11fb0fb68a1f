// Package tx is the chain's public face, shared by the application and every
// client: the transaction format (deterministic protobuf encoding,
// domain-separated sign bytes, ed25519 signatures), the state records'
// types, ABCI result codes, query paths and the state keys they resolve to,
// and the fee a transaction owes.
//
// It is a leaf: it imports only address, agr and protobuf, never the
// application, its store (cosmos/iavl, goleveldb) or CometBFT, so an agent,
// miner or gateway links it without linking a node.
//
// A transaction has exactly one valid byte encoding. Decode rejects anything
// that does not re-encode to the same bytes (reordered fields, non-minimal
// varints, unknown fields), so a signed transaction cannot be re-wrapped into
// a different hash that replays it.
package tx

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/agoranet/agora/address"
)

// MaxTxBytes bounds a transaction's encoded size before any decoding work.
const MaxTxBytes = 64 << 10

// signDomain separates Agora transaction signatures from every other thing the
// same key might sign (wire requests, vouchers, receipts).
const signDomain = "agora/tx/v1\x00"

// ErrMalformed is wrapped by every decoding failure.
var ErrMalformed = errors.New("malformed transaction")

// ErrBadSignature is returned when the signature does not verify.
var ErrBadSignature = errors.New("bad signature")

// Decoded is a parsed, structurally valid transaction. Its signature has not
// been checked; call Verify.
type Decoded struct {
	Raw       []byte
	Hash      [32]byte
	Body      *TxBody
	BodyBytes []byte
	Signature []byte
	Sender    address.Address
}

var marshalOpts = proto.MarshalOptions{Deterministic: true}

// Marshal encodes m deterministically.
func Marshal(m proto.Message) ([]byte, error) {
	return marshalOpts.Marshal(m)
}

// SignBytes are the bytes an ed25519 key signs for a transaction body.
func SignBytes(body []byte) []byte {
	out := make([]byte, 0, len(signDomain)+len(body))
	out = append(out, signDomain...)
	return append(out, body...)
}

// Sign builds the encoded transaction for body, signed with priv. It fills in
// the body's signer public key from priv.
func Sign(priv ed25519.PrivateKey, body *TxBody) ([]byte, error) {
	body.SignerPubKey = priv.Public().(ed25519.PublicKey)
	bodyBytes, err := Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode tx body: %w", err)
	}
	sig := ed25519.Sign(priv, SignBytes(bodyBytes))
	raw, err := Marshal(&Tx{Body: bodyBytes, Signature: sig})
	if err != nil {
		return nil, fmt.Errorf("encode tx: %w", err)
	}
	return raw, nil
}

// Hash is the transaction hash, identical to CometBFT's (sha256 of the bytes).
func Hash(raw []byte) [32]byte { return sha256.Sum256(raw) }

// Decode parses raw and checks its structure, without verifying the signature.
func Decode(raw []byte) (*Decoded, error) {
	if len(raw) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrMalformed)
	}
	if len(raw) > MaxTxBytes {
		return nil, fmt.Errorf("%w: %d bytes exceeds limit %d", ErrMalformed, len(raw), MaxTxBytes)
	}
	var t Tx
	if err := unmarshalCanonical(raw, &t); err != nil {
		return nil, fmt.Errorf("%w: envelope: %v", ErrMalformed, err)
	}
	var body TxBody
	if err := unmarshalCanonical(t.Body, &body); err != nil {
		return nil, fmt.Errorf("%w: body: %v", ErrMalformed, err)
	}
	if len(t.Signature) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: signature is %d bytes, want %d", ErrMalformed, len(t.Signature), ed25519.SignatureSize)
	}
	if len(body.SignerPubKey) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: signer public key is %d bytes, want %d", ErrMalformed, len(body.SignerPubKey), ed25519.PublicKeySize)
	}
	if body.ChainId == "" {
		return nil, fmt.Errorf("%w: empty chain id", ErrMalformed)
	}
	if len(body.Msgs) == 0 {
		return nil, fmt.Errorf("%w: no messages", ErrMalformed)
	}
	for i, m := range body.Msgs {
		if err := validateMsg(m); err != nil {
			return nil, fmt.Errorf("%w: message %d: %v", ErrMalformed, i, err)
		}
	}
	return &Decoded{
		Raw:       raw,
		Hash:      Hash(raw),
		Body:      &body,
		BodyBytes: t.Body,
		Signature: t.Signature,
		Sender:    address.FromPubKey(body.SignerPubKey),
	}, nil
}

// Verify checks the ed25519 signature over the body.
func (d *Decoded) Verify() error {
	if !ed25519.Verify(d.Body.SignerPubKey, SignBytes(d.BodyBytes), d.Signature) {
		return ErrBadSignature
	}
	return nil
}

func validateMsg(m *Msg) error {
	switch s := m.GetSum().(type) {
	case *Msg_Transfer:
		if s.Transfer == nil {
			return errors.New("empty transfer")
		}
		if len(s.Transfer.To) != address.Len {
			return fmt.Errorf("transfer recipient is %d bytes, want %d", len(s.Transfer.To), address.Len)
		}
		if s.Transfer.Amount == 0 {
			return errors.New("transfer of zero")
		}
		return nil
	case *Msg_SubnetRegister:
		if s.SubnetRegister == nil {
			return errors.New("empty subnet_register")
		}
		if len(s.SubnetRegister.Name) > 64 {
			return errors.New("subnet name longer than 64 bytes")
		}
		return validateProof(s.SubnetRegister.OwnerHotkey)
	case *Msg_SubnetSetParams:
		if s.SubnetSetParams == nil || s.SubnetSetParams.Params == nil {
			return errors.New("empty subnet_set_params")
		}
		return nil
	case *Msg_SubnetStart:
		if s.SubnetStart == nil {
			return errors.New("empty subnet_start")
		}
		return nil
	case *Msg_NeuronRegister:
		if s.NeuronRegister == nil {
			return errors.New("empty neuron_register")
		}
		return validateProof(s.NeuronRegister.Hotkey)
	case *Msg_NeuronServe:
		m := s.NeuronServe
		switch {
		case m == nil:
			return errors.New("empty neuron_serve")
		case len(m.Endpoint) > 256:
			return errors.New("endpoint longer than 256 bytes")
		case len(m.X25519PubKey) != 0 && len(m.X25519PubKey) != 32:
			return fmt.Errorf("x25519 key is %d bytes, want 32", len(m.X25519PubKey))
		case len(m.ModelId) > 128:
			return errors.New("model id longer than 128 bytes")
		}
		return nil
	case *Msg_StakeAdd:
		if s.StakeAdd == nil || len(s.StakeAdd.Hotkey) != address.Len || s.StakeAdd.Amount == 0 {
			return errors.New("stake_add needs a 20-byte hotkey and a positive amount")
		}
		return nil
	case *Msg_StakeRemove:
		if s.StakeRemove == nil || len(s.StakeRemove.Hotkey) != address.Len || s.StakeRemove.Amount == 0 {
			return errors.New("stake_remove needs a 20-byte hotkey and a positive amount")
		}
		return nil
	case *Msg_SetTake:
		if s.SetTake == nil || len(s.SetTake.Hotkey) != address.Len || s.SetTake.TakeBps > 10_000 {
			return errors.New("set_take needs a 20-byte hotkey and take_bps ≤ 10000")
		}
		return nil
	case *Msg_WeightsCommit:
		if s.WeightsCommit == nil || len(s.WeightsCommit.Hash) != 32 {
			return errors.New("weights_commit needs a 32-byte hash")
		}
		return nil
	case *Msg_WeightsReveal:
		m := s.WeightsReveal
		if m == nil {
			return errors.New("empty weights_reveal")
		}
		if len(m.Salt) > 64 {
			return errors.New("salt longer than 64 bytes")
		}
		return validateWeights(m.Uids, m.Values)
	case *Msg_WeightsSet:
		if s.WeightsSet == nil {
			return errors.New("empty weights_set")
		}
		return validateWeights(s.WeightsSet.Uids, s.WeightsSet.Values)
	case *Msg_ChannelOpen:
		m := s.ChannelOpen
		if m == nil || len(m.Payee) != address.Len || m.Deposit == 0 || m.ExpiryHeight == 0 {
			return errors.New("channel_open needs a 20-byte payee, a positive deposit and an expiry height")
		}
		return nil
	case *Msg_ChannelTopup:
		if s.ChannelTopup == nil || s.ChannelTopup.Amount == 0 {
			return errors.New("channel_topup needs a positive amount")
		}
		return nil
	case *Msg_ChannelClaim:
		v := s.ChannelClaim.GetVoucher()
		if v == nil || len(v.Signature) != ed25519.SignatureSize || v.Cumulative == 0 {
			return errors.New("channel_claim needs a voucher with a positive amount and a 64-byte signature")
		}
		if n := len(v.GetDelegation().GetNetuids()); n > MaxDelegationNetuids {
			return fmt.Errorf("delegation names %d subnets, limit %d", n, MaxDelegationNetuids)
		}
		return nil
	case *Msg_ChannelClose:
		if s.ChannelClose == nil {
			return errors.New("empty channel_close")
		}
		return nil
	case *Msg_ChainValidatorCreate:
		m := s.ChainValidatorCreate
		switch {
		case m == nil:
			return errors.New("empty chain_validator_create")
		case len(m.ConsensusPubKey) != ed25519.PublicKeySize:
			return fmt.Errorf("consensus key is %d bytes, want %d", len(m.ConsensusPubKey), ed25519.PublicKeySize)
		case len(m.ConsensusProof) != ed25519.SignatureSize:
			return fmt.Errorf("consensus proof is %d bytes, want %d", len(m.ConsensusProof), ed25519.SignatureSize)
		}
		return ValidateMoniker(m.Moniker)
	case *Msg_ChainValidatorBond:
		if s.ChainValidatorBond == nil || s.ChainValidatorBond.Amount == 0 {
			return errors.New("chain_validator_bond needs a positive amount")
		}
		return nil
	case *Msg_ChainValidatorUnbond:
		if s.ChainValidatorUnbond == nil || s.ChainValidatorUnbond.Amount == 0 {
			return errors.New("chain_validator_unbond needs a positive amount")
		}
		return nil
	case *Msg_ChainValidatorEdit:
		if s.ChainValidatorEdit == nil {
			return errors.New("empty chain_validator_edit")
		}
		return ValidateMoniker(s.ChainValidatorEdit.Moniker)
	case *Msg_ChainValidatorUnjail:
		return nil
	case *Msg_ModelRegister, *Msg_ModelUpdate, *Msg_ModelSharesTransfer, *Msg_ModelClaim, *Msg_ModelOffer,
		*Msg_ModelBuy, *Msg_DataRegister, *Msg_DataContribute, *Msg_DataClaim:
		return validateRoyaltyMsg(m)
	case nil:
		return errors.New("empty message")
	default:
		return fmt.Errorf("unknown message type %T", s)
	}
}

// unmarshalCanonical decodes b into m and insists that b is the one
// deterministic encoding of m with no unknown fields anywhere.
func unmarshalCanonical(b []byte, m proto.Message) error {
	if err := (proto.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(b, m); err != nil {
		return err
	}
	if hasUnknown(m.ProtoReflect()) {
		return errors.New("unknown fields")
	}
	again, err := Marshal(m)
	if err != nil {
		return err
	}
	if !bytes.Equal(again, b) {
		return errors.New("non-canonical encoding")
	}
	return nil
}

func hasUnknown(m protoreflect.Message) bool {
	if len(m.GetUnknown()) > 0 {
		return true
	}
	found := false
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				if hasUnknown(l.Get(i).Message()) {
					found = true
					return false
				}
			}
		case fd.Message() != nil && !fd.IsMap():
			if hasUnknown(v.Message()) {
				found = true
				return false
			}
		}
		return true
	})
	return found
}

// Transfer returns a message that moves amount base units to to.
func Transfer(to address.Address, amount uint64) *Msg {
	return &Msg{Sum: &Msg_Transfer{Transfer: &MsgTransfer{To: to[:], Amount: amount}}}
}

// MaxWeights bounds a weight vector when it is decoded, before any state is
// read. Subnets are smaller (chain/subnet.MaxUIDsLimit), and the fee of a
// weights message grows with its length (EntriesPerFee).
const MaxWeights = 4096

// MaxDelegationNetuids bounds a delegation's subnet list, which every claim
// under it hashes and searches.
const MaxDelegationNetuids = 64

func validateProof(p *HotkeyProof) error {
	if p == nil || len(p.PubKey) != ed25519.PublicKeySize || len(p.Signature) != ed25519.SignatureSize {
		return errors.New("hotkey proof needs a 32-byte key and a 64-byte signature")
	}
	return nil
}

func validateWeights(uids, values []uint32) error {
	if len(uids) != len(values) {
		return fmt.Errorf("%d uids but %d values", len(uids), len(values))
	}
	if len(uids) > MaxWeights {
		return fmt.Errorf("%d weights, limit %d", len(uids), MaxWeights)
	}
	for _, v := range values {
		if v > 65535 {
			return fmt.Errorf("weight %d exceeds 65535", v)
		}
	}
	return nil
}

// HotkeyBindBytes are what a hotkey signs to bind itself to a coldkey on a subnet.
func HotkeyBindBytes(chainID string, netuid uint32, coldkey address.Address) []byte {
	b := []byte("agora/hotkey-bind/v1\x00")
	b = append(b, chainID...)
	b = append(b, 0, byte(netuid>>24), byte(netuid>>16), byte(netuid>>8), byte(netuid))
	return append(b, coldkey[:]...)
}

// ProveHotkey signs the binding of hotkey to coldkey on netuid.
func ProveHotkey(hotkey ed25519.PrivateKey, chainID string, netuid uint32, coldkey address.Address) *HotkeyProof {
	return &HotkeyProof{
		PubKey:    hotkey.Public().(ed25519.PublicKey),
		Signature: ed25519.Sign(hotkey, HotkeyBindBytes(chainID, netuid, coldkey)),
	}
}

// Verify checks a hotkey proof.
func (p *HotkeyProof) Verify(chainID string, netuid uint32, coldkey address.Address) bool {
	return ed25519.Verify(p.PubKey, HotkeyBindBytes(chainID, netuid, coldkey), p.Signature)
}

// VoucherSignBytes are what a payer signs to owe cumulative on a channel.
func VoucherSignBytes(chainID string, channelID, cumulative uint64) []byte {
	b := []byte("agora/voucher/v1\x00")
	b = binary.BigEndian.AppendUint32(b, uint32(len(chainID)))
	b = append(b, chainID...)
	b = binary.BigEndian.AppendUint64(b, channelID)
	return binary.BigEndian.AppendUint64(b, cumulative)
}

// SignVoucher makes a voucher for cumulative on a channel.
func SignVoucher(payer ed25519.PrivateKey, chainID string, channelID, cumulative uint64) *Voucher {
	return &Voucher{ChannelId: channelID, Cumulative: cumulative, Signature: ed25519.Sign(payer, VoucherSignBytes(chainID, channelID, cumulative))}
}

// Verify checks a voucher against the channel payer's key: signed by the
// payer itself, or by a session key whose delegation the payer signed for
// this channel and whose cap covers the amount.
func (v *Voucher) Verify(chainID string, payer ed25519.PublicKey) bool {
	if len(payer) != ed25519.PublicKeySize {
		return false
	}
	signer := payer
	if d := v.Delegation; d != nil {
		if d.ChannelId != v.ChannelId || v.Cumulative > d.Cap || len(d.SessionPubKey) != ed25519.PublicKeySize ||
			!ed25519.Verify(payer, DelegationSignBytes(chainID, d), d.Signature) {
			return false
		}
		signer = d.SessionPubKey
	}
	return ed25519.Verify(signer, VoucherSignBytes(chainID, v.ChannelId, v.Cumulative), v.Signature)
}

// DelegationSignBytes are what a payer signs to delegate to a session key.
func DelegationSignBytes(chainID string, d *Delegation) []byte {
	b := []byte("agora/delegation/v1\x00")
	b = binary.BigEndian.AppendUint32(b, uint32(len(chainID)))
	b = append(b, chainID...)
	b = binary.BigEndian.AppendUint64(b, d.ChannelId)
	b = binary.BigEndian.AppendUint32(b, uint32(len(d.SessionPubKey)))
	b = append(b, d.SessionPubKey...)
	b = binary.BigEndian.AppendUint64(b, d.Cap)
	b = binary.BigEndian.AppendUint64(b, d.ExpiryHeight)
	b = binary.BigEndian.AppendUint32(b, uint32(len(d.Netuids)))
	for _, n := range d.Netuids {
		b = binary.BigEndian.AppendUint32(b, n)
	}
	return b
}

// Delegate signs a delegation of channel to a session key.
func Delegate(payer ed25519.PrivateKey, chainID string, channel uint64, session ed25519.PublicKey, capAmount, expiry uint64, netuids []uint32) *Delegation {
	d := &Delegation{ChannelId: channel, SessionPubKey: session, Cap: capAmount, ExpiryHeight: expiry, Netuids: netuids}
	d.Signature = ed25519.Sign(payer, DelegationSignBytes(chainID, d))
	return d
}

// SignDelegatedVoucher makes a voucher signed by a session key under d.
func SignDelegatedVoucher(session ed25519.PrivateKey, chainID string, d *Delegation, cumulative uint64) *Voucher {
	return &Voucher{ChannelId: d.ChannelId, Cumulative: cumulative, Delegation: d,
		Signature: ed25519.Sign(session, VoucherSignBytes(chainID, d.ChannelId, cumulative))}
}
