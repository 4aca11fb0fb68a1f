package tx

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/address"
)

func fixedKey() ed25519.PrivateKey {
	seed := make([]byte, 32)
	for i := range seed {
		seed[i] = byte(i)
	}
	return ed25519.NewKeyFromSeed(seed)
}

func fixedBody() *TxBody {
	var to address.Address
	for i := range to {
		to[i] = 0xAA
	}
	return &TxBody{ChainId: "agora-devnet", Nonce: 7, Fee: 1_000_000, Memo: "hi", Msgs: []*Msg{Transfer(to, 123_456_789)}}
}

func TestRoundTrip(t *testing.T) {
	raw, err := Sign(fixedKey(), fixedBody())
	if err != nil {
		t.Fatal(err)
	}
	d, err := Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Verify(); err != nil {
		t.Fatal(err)
	}
	want := fixedBody()
	want.SignerPubKey = fixedKey().Public().(ed25519.PublicKey)
	if !proto.Equal(d.Body, want) {
		t.Fatalf("decoded body %v, want %v", d.Body, want)
	}
	if d.Sender != address.FromPubKey(want.SignerPubKey) {
		t.Fatal("sender not derived from signer key")
	}
	again, _ := Marshal(&Tx{Body: d.BodyBytes, Signature: d.Signature})
	if !bytes.Equal(again, raw) {
		t.Fatal("re-encoding differs")
	}
}

// TestSignBytesGolden pins the exact bytes every wallet must sign. The body
// encoding is rebuilt by hand with protowire, independent of generated code.
func TestSignBytesGolden(t *testing.T) {
	priv := fixedKey()
	body := fixedBody()
	body.SignerPubKey = priv.Public().(ed25519.PublicKey)
	got, err := Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	var transfer []byte
	transfer = protowire.AppendTag(transfer, 1, protowire.BytesType)
	transfer = protowire.AppendBytes(transfer, bytes.Repeat([]byte{0xAA}, 20))
	transfer = protowire.AppendTag(transfer, 2, protowire.VarintType)
	transfer = protowire.AppendVarint(transfer, 123_456_789)
	var msg []byte
	msg = protowire.AppendTag(msg, 1, protowire.BytesType)
	msg = protowire.AppendBytes(msg, transfer)
	var want []byte
	want = protowire.AppendTag(want, 1, protowire.BytesType)
	want = protowire.AppendString(want, "agora-devnet")
	want = protowire.AppendTag(want, 2, protowire.BytesType)
	want = protowire.AppendBytes(want, body.SignerPubKey)
	want = protowire.AppendTag(want, 3, protowire.VarintType)
	want = protowire.AppendVarint(want, 7)
	want = protowire.AppendTag(want, 4, protowire.VarintType)
	want = protowire.AppendVarint(want, 1_000_000)
	want = protowire.AppendTag(want, 5, protowire.BytesType)
	want = protowire.AppendBytes(want, msg)
	want = protowire.AppendTag(want, 6, protowire.BytesType)
	want = protowire.AppendString(want, "hi")
	if !bytes.Equal(got, want) {
		t.Fatalf("body encoding\n got %x\nwant %x", got, want)
	}
	sb := SignBytes(got)
	if !bytes.HasPrefix(sb, []byte("agora/tx/v1\x00")) {
		t.Fatal("sign bytes lack the domain separator")
	}
	const golden = "61676f72612f74782f7631000a0c61676f72612d6465766e6574122003a1" +
		"07bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8" +
		"180720c0843d2a1d0a1b0a14aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa10959aef3a32026869"
	if hex.EncodeToString(sb) != golden {
		t.Fatalf("sign bytes changed:\n got %x\nwant %s", sb, golden)
	}
}

func TestDecodeRejects(t *testing.T) {
	priv := fixedKey()
	good, _ := Sign(priv, fixedBody())
	d, _ := Decode(good)

	withUnknown := append(append([]byte(nil), d.BodyBytes...), protowire.AppendVarint(protowire.AppendTag(nil, 99, protowire.VarintType), 1)...)
	unknownTx, _ := Marshal(&Tx{Body: withUnknown, Signature: d.Signature})

	// Same fields, swapped order: valid protobuf, but not the canonical encoding.
	var reordered []byte
	reordered = protowire.AppendTag(reordered, 2, protowire.BytesType)
	reordered = protowire.AppendBytes(reordered, d.Signature)
	reordered = protowire.AppendTag(reordered, 1, protowire.BytesType)
	reordered = protowire.AppendBytes(reordered, d.BodyBytes)

	// Non-minimal varint for the nonce.
	nonMinimal := bytes.Replace(d.BodyBytes, []byte{0x18, 0x07}, []byte{0x18, 0x87, 0x00}, 1)
	nonMinimalTx, _ := Marshal(&Tx{Body: nonMinimal, Signature: d.Signature})

	noMsgs, _ := Sign(priv, &TxBody{ChainId: "c", Fee: 1})
	shortTo, _ := Sign(priv, &TxBody{ChainId: "c", Msgs: []*Msg{{Sum: &Msg_Transfer{Transfer: &MsgTransfer{To: []byte{1}, Amount: 1}}}}})
	zero, _ := Sign(priv, &TxBody{ChainId: "c", Msgs: []*Msg{Transfer(address.Address{}, 0)}})
	emptyMsg, _ := Sign(priv, &TxBody{ChainId: "c", Msgs: []*Msg{{}}})
	noChain, _ := Sign(priv, &TxBody{Msgs: []*Msg{Transfer(address.Address{}, 1)}})
	shortSig, _ := Marshal(&Tx{Body: d.BodyBytes, Signature: d.Signature[:10]})

	cases := map[string][]byte{
		"empty":           nil,
		"garbage":         {0xde, 0xad, 0xbe, 0xef},
		"too large":       make([]byte, MaxTxBytes+1),
		"unknown field":   unknownTx,
		"reordered":       reordered,
		"non-minimal":     nonMinimalTx,
		"no messages":     noMsgs,
		"short address":   shortTo,
		"zero amount":     zero,
		"empty message":   emptyMsg,
		"no chain id":     noChain,
		"short signature": shortSig,
	}
	for name, raw := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := Decode(raw); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Decode err = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestVerifyRejectsTampering(t *testing.T) {
	raw, _ := Sign(fixedKey(), fixedBody())
	d, _ := Decode(raw)
	d.BodyBytes = bytes.Replace(d.BodyBytes, []byte{0x18, 0x07}, []byte{0x18, 0x08}, 1)
	if err := d.Verify(); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("tampered nonce verified: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	raw, _ := Sign(fixedKey(), fixedBody())
	f.Add(raw)
	f.Add([]byte{0x0a, 0x00})
	// Chain validator messages, so the fuzzer starts from their shapes.
	k := fixedKey()
	for _, m := range []*Msg{
		ChainValidatorCreate(k.Public().(ed25519.PublicKey), make([]byte, 64), "node", 1),
		ChainValidatorBond(1), ChainValidatorUnbond(1), ChainValidatorEdit("x"), ChainValidatorUnjail(),
		// Models and data.
		ModelRegister(&MsgModelRegister{ModelId: strings.Repeat("ab", 32), Name: "m", Urls: []string{"https://x"}, RoyaltyBps: 1,
			Shares: 1, DataBps: 1, Citations: []*Citation{{Dataset: make([]byte, 32), Weight: 1}}}),
		ModelUpdate(strings.Repeat("ab", 32), "n", "mit", nil), ModelSharesTransfer(strings.Repeat("ab", 32), address.Address{1}, 1),
		ModelClaim(strings.Repeat("ab", 32)), ModelBuy(strings.Repeat("ab", 32), 1, 2),
		ModelOffer(&MsgModelOffer{ModelId: strings.Repeat("ab", 32), Shares: 2, Price: 1, PriceStep: 1, MinShares: 1, EndHeight: 9}),
		DataRegister(&MsgDataRegister{Root: make([]byte, 32), Files: 1, Contributors: []*Contributor{{Address: make([]byte, 20), Weight: 1}}}),
		DataContribute(make([]byte, 32), &DataLeaf{FileSha256: make([]byte, 32), Contributor: make([]byte, 20), Weight: 1}, 0, [][]byte{make([]byte, 32)}),
		DataClaim(make([]byte, 32)),
	} {
		b := fixedBody()
		b.Msgs = []*Msg{m}
		if raw, err := Sign(k, b); err == nil {
			f.Add(raw)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("decode error not ErrMalformed: %v", err)
			}
			return
		}
		// Whatever decodes must be canonical: it re-encodes to the same bytes.
		again, err := Marshal(&Tx{Body: d.BodyBytes, Signature: d.Signature})
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted non-canonical tx %x", b)
		}
		_ = d.Verify()
	})
}

func TestVoucherSignatures(t *testing.T) {
	k := fixedKey()
	pub := k.Public().(ed25519.PublicKey)
	v := SignVoucher(k, "agora-devnet", 7, 1_000)
	if !v.Verify("agora-devnet", pub) {
		t.Fatal("voucher does not verify")
	}
	for name, bad := range map[string]*Voucher{
		"amount raised": {ChannelId: 7, Cumulative: 1_001, Signature: v.Signature},
		"other channel": {ChannelId: 8, Cumulative: 1_000, Signature: v.Signature},
	} {
		if bad.Verify("agora-devnet", pub) {
			t.Errorf("%s: verified", name)
		}
	}
	if v.Verify("other-chain", pub) || v.Verify("agora-devnet", pub[:5]) {
		t.Fatal("voucher verified on another chain or with a short key")
	}
	// Vouchers and transactions sign different domains: a voucher signature
	// is never a valid transaction signature over the same bytes.
	if bytes.HasPrefix(VoucherSignBytes("c", 1, 1), []byte(signDomain)) {
		t.Fatal("voucher and transaction domains overlap")
	}
}

func TestDelegatedVouchers(t *testing.T) {
	payer := fixedKey()
	session := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))
	pub := payer.Public().(ed25519.PublicKey)
	d := Delegate(payer, "c", 3, session.Public().(ed25519.PublicKey), 1_000, 50, []uint32{1})
	if v := SignDelegatedVoucher(session, "c", d, 1_000); !v.Verify("c", pub) {
		t.Fatal("delegated voucher within the cap does not verify")
	}
	if v := SignDelegatedVoucher(session, "c", d, 1_001); v.Verify("c", pub) {
		t.Fatal("voucher above the session cap verified")
	}
	other := proto.Clone(d).(*Delegation)
	other.ChannelId = 4
	if v := SignDelegatedVoucher(session, "c", other, 10); v.Verify("c", pub) {
		t.Fatal("delegation moved to another channel verified")
	}
	raised := proto.Clone(d).(*Delegation)
	raised.Cap = 1 << 40
	if v := SignDelegatedVoucher(session, "c", raised, 5_000); v.Verify("c", pub) {
		t.Fatal("delegation with a raised cap verified")
	}
	stranger := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	if v := SignDelegatedVoucher(stranger, "c", d, 10); v.Verify("c", pub) {
		t.Fatal("voucher by a key other than the session key verified")
	}
}

func TestCodeName(t *testing.T) {
	for code, name := range map[uint32]string{CodeOK: "ok", CodeBadNonce: "bad_nonce", CodeTombstoned: "tombstoned", CodeInternal: "internal", 12345: "other"} {
		if got := CodeName(code); got != name {
			t.Errorf("CodeName(%d) = %q, want %q", code, got, name)
		}
	}
	for code := uint32(0); code <= CodeTombstoned; code++ {
		if CodeName(code) == "other" {
			t.Errorf("code %d has no name", code)
		}
	}
}

func TestBurnAt(t *testing.T) {
	s := &Subnet{Burn: 1_000_000, BurnUpdatedAt: 100, Params: &SubnetParams{Tempo: 10, MinBurn: 1_000, MaxBurn: 2_000_000}}
	for _, c := range []struct {
		height, want uint64
	}{
		{50, 1_000_000},  // before it was set: the price as set
		{100, 1_000_000}, // when set
		{110, 500_000},   // one tempo later: half
		{130, 125_000},   // three: an eighth
		{105, 707_106},   // half a tempo: 1/√2, within the series' error
		{1_000, 1_000},   // long after: the floor
	} {
		got := s.BurnAt(c.height)
		lo, hi := c.want-c.want/500, c.want+c.want/500 // 0.2%
		if got < lo || got > hi {
			t.Errorf("BurnAt(%d) = %d, want %d ±0.2%%", c.height, got, c.want)
		}
	}
	if got := (&Subnet{Burn: 5_000_000, Params: &SubnetParams{Tempo: 10, MaxBurn: 2_000_000}}).BurnAt(0); got != 2_000_000 {
		t.Errorf("above the ceiling: %d", got)
	}
}
