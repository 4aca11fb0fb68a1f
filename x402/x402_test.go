package x402

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// The field names are x402 v2's: a generic client finds them where the
// spec puts them.
func TestPaymentRequiredLayout(t *testing.T) {
	pr := PaymentRequired{X402Version: Version, Error: "payment required",
		Resource: Resource{URL: "/v1/chat/completions"},
		Accepts: []Requirements{{Scheme: SchemeChannel, Network: Network("agora-devnet"), Amount: Amount(42),
			Asset: Asset, PayTo: "agr1xyz", MaxTimeoutSeconds: 60, Extra: ChannelExtra{ChainID: "agora-devnet", Netuid: 1, PricePer1K: "1000"}}}}
	raw, _ := base64.StdEncoding.DecodeString(Encode(pr))
	var generic map[string]any
	if err := json.Unmarshal(raw, &generic); err != nil {
		t.Fatal(err)
	}
	if generic["x402Version"] != float64(2) {
		t.Fatalf("x402Version = %v", generic["x402Version"])
	}
	acc := generic["accepts"].([]any)[0].(map[string]any)
	for _, k := range []string{"scheme", "network", "amount", "asset", "payTo", "maxTimeoutSeconds", "extra"} {
		if _, ok := acc[k]; !ok {
			t.Errorf("accepts[0] has no %q: %s", k, raw)
		}
	}
	if acc["network"] != "agora:agora-devnet" || acc["amount"] != "42" {
		t.Errorf("network/amount = %v/%v", acc["network"], acc["amount"])
	}
	var back PaymentRequired
	if err := Decode(Encode(pr), &back); err != nil {
		t.Fatal(err)
	}
	got, err := back.Channel(Network("agora-devnet"))
	if err != nil || got.Amount != "42" || got.PayTo != "agr1xyz" {
		t.Fatalf("Channel = %+v, %v", got, err)
	}
	if _, err := back.Channel(Network("other")); !errors.Is(err, ErrMalformed) {
		t.Fatalf("another network's entry was accepted: %v", err)
	}
	back.X402Version = 1
	if _, err := back.Channel(Network("agora-devnet")); err == nil {
		t.Fatal("version 1 accepted")
	}
}

func TestDecodeRejects(t *testing.T) {
	var v PaymentPayload
	for name, h := range map[string]string{
		"empty":      "",
		"not base64": "%%%",
		"not json":   base64.StdEncoding.EncodeToString([]byte("{")),
		"too long":   strings.Repeat("A", MaxHeaderBytes+4),
	} {
		if err := Decode(h, &v); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	if _, err := ParseAmount("-1"); err == nil {
		t.Error("negative amount parsed")
	}
	if _, err := ParseAmount("18446744073709551616"); err == nil {
		t.Error("amount over uint64 parsed")
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(Encode(PaymentPayload{X402Version: 2, Payload: ChannelPayload{ChannelID: "1", Cumulative: "5", Signature: "ab"}}))
	f.Fuzz(func(t *testing.T, h string) {
		var p PaymentPayload
		if Decode(h, &p) == nil {
			ParseAmount(p.Payload.Cumulative)
			ParseAmount(p.Payload.ChannelID)
		}
		var r PaymentRequired
		if Decode(h, &r) == nil {
			r.Channel("agora:x")
		}
	})
}

func TestMaxCharge(t *testing.T) {
	got, err := MaxCharge(1000, 100, 24)
	if err != nil || got != 124 {
		t.Fatalf("MaxCharge = %d, %v; want 124", got, err)
	}
	if got, err := MaxCharge(3, 1, 0); err != nil || got != 1 {
		t.Fatalf("a one-byte request is free by rounding: %d, %v", got, err)
	}
	if _, err := MaxCharge(1<<40, 1, 1<<62); err == nil {
		t.Fatal("an overflowing charge was computed")
	}
}
