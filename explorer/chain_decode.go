package explorer

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	abci "github.com/cometbft/cometbft/abci/types"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain/tx"
)

// A transaction on a page: its body decoded message by message, and what
// the chain made of it. Messages are rendered from their protobuf
// descriptors, so a message type added to the chain shows up here without
// a change (with its fields named as in tx.proto); the tables below only
// make known fields read better (amounts in AGR, keys as addresses, links).

// txView is one transaction: the block page lists them, the tx page shows one.
type txView struct {
	Hash     string    `json:"hash"` // upper hex, as CometBFT prints it
	Height   int64     `json:"height"`
	Index    uint32    `json:"index"`
	Signer   string    `json:"signer,omitempty"`
	Nonce    uint64    `json:"nonce"`
	Fee      uint64    `json:"fee"`
	Memo     string    `json:"memo,omitempty"`
	Code     uint32    `json:"code"`
	CodeName string    `json:"code_name"`
	Log      string    `json:"log,omitempty"`
	Msgs     []txMsg   `json:"msgs"`
	Events   []txEvent `json:"events"`
	// DecodeError is set for bytes that are not an Agora transaction (the
	// chain refuses them, but a block may still carry them).
	DecodeError string `json:"decode_error,omitempty"`
}

// OK reports whether the transaction succeeded.
func (t txView) OK() bool { return t.Code == tx.CodeOK }

// txOutcome is the part of an execution result a page shows.
type txOutcome struct {
	Code   uint32
	Log    string
	Events []abci.Event
}

// decodeTx builds a txView from a raw transaction and its result.
func decodeTx(raw []byte, height int64, index uint32, out txOutcome) txView {
	h := tx.Hash(raw)
	v := txView{
		Hash: strings.ToUpper(hex.EncodeToString(h[:])), Height: height, Index: index,
		Code: out.Code, CodeName: tx.CodeName(out.Code), Log: out.Log, Events: renderEvents(out.Events), Msgs: []txMsg{},
	}
	d, err := tx.Decode(raw)
	if err != nil {
		v.DecodeError = err.Error()
		return v
	}
	v.Signer, v.Nonce, v.Fee, v.Memo = d.Sender.String(), d.Body.Nonce, d.Body.Fee, d.Body.Memo
	for _, m := range d.Body.Msgs {
		v.Msgs = append(v.Msgs, renderMsg(m))
	}
	return v
}

// txMsg is one decoded message.
type txMsg struct {
	Type   string     // the tx.proto oneof name: "transfer", "stake_add"
	Fields []msgField // in tx.proto order; nested messages flattened ("params.tempo")
}

// msgField is one field of a message.
type msgField struct {
	Name  string
	Value any    // the JSON twin's value: integers in base units, bech32 addresses, hex bytes
	Text  string // what the page shows
	Href  string // a page the value links to
	Mono  bool   // an identifier, shown in a fixed-width font
}

// MarshalJSON writes {"type": "transfer", "to": "agora1…", "amount": 5000},
// fields in tx.proto order.
func (m txMsg) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"type":`)
	t, _ := json.Marshal(m.Type)
	b.Write(t)
	for _, f := range m.Fields {
		k, err := json.Marshal(f.Name)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(f.Value)
		if err != nil {
			return nil, err
		}
		b.WriteByte(',')
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// Label is the message type in words ("Stake add").
func (m txMsg) Label() string {
	s := strings.ReplaceAll(m.Type, "_", " ")
	if s == "" {
		return "Unknown"
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// About explains the message type in a line, for newcomers.
func (m txMsg) About() string { return msgAbout[m.Type] }

var msgAbout = map[string]string{
	"transfer":               "Moves AGR from the signer to another account.",
	"subnet_register":        "Creates a subnet owned by the signer; the lock cost stays with the subnet.",
	"subnet_set_params":      "The subnet's owner replaces its hyperparameters.",
	"subnet_start":           "The subnet's owner turns on emission to it.",
	"neuron_register":        "Burns the registration price and gives a hotkey a UID on a subnet.",
	"neuron_serve":           "A neuron (by its hotkey) publishes where it serves and which model.",
	"stake_add":              "Moves AGR from the signer's balance into a hotkey's stake on a subnet.",
	"stake_remove":           "Moves the signer's stake in a hotkey back to its balance.",
	"set_take":               "Sets a validator hotkey's take: its cut of what its delegators earn.",
	"weights_commit":         "A validator commits to a hash of its weights, to reveal later.",
	"weights_reveal":         "A validator reveals the weights it committed to.",
	"weights_set":            "A validator scores the subnet's miners (weights, out of 65535).",
	"channel_open":           "Escrows a deposit a payee (a gateway) claims against the payer's signed vouchers.",
	"channel_topup":          "Adds to a payment channel's deposit, and may extend its expiry.",
	"channel_claim":          "The payee settles what a voucher of the payer owes it.",
	"channel_close":          "Refunds the unclaimed deposit to the payer after expiry.",
	"chain_validator_create": "Makes the signer a chain validator (a block producer), bonding AGR.",
	"chain_validator_bond":   "Adds to a chain validator's bond.",
	"chain_validator_unbond": "Starts paying out part of a chain validator's bond, after the unbonding period.",
	"chain_validator_edit":   "Changes a chain validator's display name.",
	"chain_validator_unjail": "Returns a chain validator jailed for downtime to the candidates.",
	"model_register":         "Registers a model by the sha256 of its GGUF file and issues all its shares to the signer.",
	"model_update":           "The model's owner changes its name, license or download URLs.",
	"model_shares_transfer":  "Moves shares of a model, and its future royalty, to another account.",
	"model_claim":            "Pays the signer the royalty its shares of a model have earned.",
	"model_offer":            "The model's owner offers shares for sale until an end height (an initial model offering).",
	"model_buy":              "Pays into a model's offering for shares, delivered when the offering closes.",
	"data_register":          "Registers a dataset by the Merkle root of its manifest of contributions.",
	"data_contribute":        "Credits a contributor of a dataset, proved by a Merkle inclusion proof.",
	"data_claim":             "Pays the signer the royalty its contributions to a dataset have earned.",
}

// amountFields are the fields (and event attributes) that hold base units.
var amountFields = map[string]bool{
	"amount": true, "deposit": true, "max_lock": true, "max_burn": true, "min_burn": true, "bond": true,
	"cap": true, "cumulative": true, "stake_threshold": true, "price_per_1k": true, "fee": true,
	"minted": true, "burned": true, "settled": true, "emission": true,
	"price": true, "price_step": true, "max_cost": true, "cost": true, "raised": true, "data": true,
}

func renderMsg(m *tx.Msg) txMsg {
	r := m.ProtoReflect()
	od := r.Descriptor().Oneofs().ByName("sum")
	if od == nil {
		return txMsg{}
	}
	fd := r.WhichOneof(od)
	if fd == nil {
		return txMsg{}
	}
	return txMsg{Type: string(fd.Name()), Fields: nonNil(renderFields("", r.Get(fd).Message()))}
}

// maxListed bounds how many entries of a list field the page spells out
// (a weight vector has up to 4096); the JSON twin has them all.
const maxListed = 16

func renderFields(prefix string, m protoreflect.Message) []msgField {
	var out []msgField
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		name := prefix + string(fd.Name())
		v := m.Get(fd)
		switch {
		case fd.IsList():
			out = append(out, listField(name, fd, v.List()))
		case fd.Kind() == protoreflect.MessageKind:
			if !m.Has(fd) {
				continue
			}
			sub := v.Message()
			if sub.Descriptor().Name() == "HotkeyProof" {
				// The proof binds a hotkey; what a reader wants is its address.
				pub := sub.Get(sub.Descriptor().Fields().ByName("pub_key")).Bytes()
				if len(pub) == ed25519.PublicKeySize {
					a := address.FromPubKey(pub).String()
					out = append(out, msgField{Name: name, Value: a, Text: a, Href: "/accounts/" + a, Mono: true})
					continue
				}
			}
			out = append(out, renderFields(name+".", sub)...)
		default:
			out = append(out, scalarField(name, fd, v))
		}
	}
	return out
}

func scalarField(name string, fd protoreflect.FieldDescriptor, v protoreflect.Value) msgField {
	base := name[strings.LastIndexByte(name, '.')+1:]
	f := msgField{Name: name}
	switch fd.Kind() {
	case protoreflect.BytesKind:
		b := v.Bytes()
		if len(b) == address.Len {
			a := addrString(b)
			f.Value, f.Text, f.Href, f.Mono = a, a, "/accounts/"+a, true
			return f
		}
		f.Value, f.Text, f.Mono = hex.EncodeToString(b), short(hex.EncodeToString(b)), true
		if (base == "root" || base == "dataset") && len(b) == 32 {
			f.Href = "/datasets/" + hex.EncodeToString(b)
		}
		if len(b) == 0 {
			f.Text = "—"
		}
	case protoreflect.StringKind:
		f.Value, f.Text = v.String(), v.String()
		f.Mono = base == "model_id" || base == "endpoint"
		if base == "model_id" && f.Text != "" {
			f.Href = "/models/" + url.PathEscape(f.Text)
		}
		if f.Text == "" {
			f.Text = "—"
		}
	case protoreflect.BoolKind:
		f.Value, f.Text = v.Bool(), map[bool]string{true: "yes", false: "no"}[v.Bool()]
	case protoreflect.Uint64Kind, protoreflect.Uint32Kind, protoreflect.Fixed64Kind, protoreflect.Fixed32Kind:
		n := v.Uint()
		f.Value, f.Text = n, strconv.FormatUint(n, 10)
		switch {
		case amountFields[base]:
			f.Text = agr.Format(n)
		case strings.HasSuffix(base, "_bps"):
			f.Text = percent(n, 10_000)
		case base == "netuid":
			f.Href = fmt.Sprintf("/subnets/%d", n)
		case base == "channel_id":
			f.Href = fmt.Sprintf("/channels/%d", n)
		}
	default:
		f.Value, f.Text = v.Interface(), fmt.Sprint(v.Interface())
	}
	return f
}

func listField(name string, fd protoreflect.FieldDescriptor, l protoreflect.List) msgField {
	vals := make([]any, l.Len())
	texts := make([]string, 0, min(l.Len(), maxListed))
	for i := range l.Len() {
		v := l.Get(i)
		switch fd.Kind() {
		case protoreflect.BytesKind:
			vals[i] = hex.EncodeToString(v.Bytes())
		case protoreflect.MessageKind:
			vals[i] = fmt.Sprint(v.Message().Interface())
		default:
			vals[i] = v.Interface()
		}
		if i < maxListed {
			texts = append(texts, fmt.Sprint(vals[i]))
		}
	}
	f := msgField{Name: name, Value: vals, Text: strings.Join(texts, ", ")}
	switch {
	case l.Len() == 0:
		f.Text = "none"
	case l.Len() > maxListed:
		f.Text = fmt.Sprintf("%d entries: %s, …", l.Len(), f.Text)
	}
	return f
}

// txEvent is one ABCI event of a transaction or of a block's end.
type txEvent struct {
	Type       string      `json:"type"`
	Attributes []eventAttr `json:"attributes"`
}

type eventAttr struct {
	Key   string `json:"key"`
	Value string `json:"value"`
	Text  string `json:"-"`
	Href  string `json:"-"`
	Mono  bool   `json:"-"`
}

var addressAttrs = map[string]bool{
	"signer": true, "sender": true, "recipient": true, "payer": true, "payee": true,
	"owner": true, "operator": true, "hotkey": true, "holder": true, "from": true, "to": true,
	"contributor": true, "buyer": true,
}

func renderEvents(evs []abci.Event) []txEvent {
	out := make([]txEvent, 0, len(evs))
	for _, e := range evs {
		te := txEvent{Type: e.Type, Attributes: make([]eventAttr, 0, len(e.Attributes))}
		for _, a := range e.Attributes {
			at := eventAttr{Key: a.Key, Value: a.Value, Text: a.Value}
			n, numErr := strconv.ParseUint(a.Value, 10, 64)
			switch {
			case amountFields[a.Key] && numErr == nil:
				at.Text = agr.Format(n)
			case addressAttrs[a.Key]:
				if _, err := address.Parse(a.Value); err == nil {
					at.Href, at.Mono = "/accounts/"+a.Value, true
				}
			case a.Key == "netuid" && numErr == nil:
				at.Href = fmt.Sprintf("/subnets/%d", n)
			case a.Key == "channel_id" && numErr == nil:
				at.Href = fmt.Sprintf("/channels/%d", n)
			case (a.Key == "height" || a.Key == "infraction_height") && numErr == nil && n > 0:
				at.Href = fmt.Sprintf("/blocks/%d", n)
			case a.Key == "consensus_address":
				at.Mono = true
			case a.Key == "model_id":
				at.Href, at.Mono = "/models/"+url.PathEscape(a.Value), true
			case a.Key == "root":
				at.Href, at.Mono = "/datasets/"+url.PathEscape(a.Value), true
			}
			te.Attributes = append(te.Attributes, at)
		}
		out = append(out, te)
	}
	return out
}
