package e2e

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"testing"

	"github.com/agoranet/agora/address"
)

func minerKey(t testing.TB, seed byte) (*PrivateKey, address.Address) {
	t.Helper()
	hot := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32))
	k, err := DeriveKey(hot)
	if err != nil {
		t.Fatal(err)
	}
	return k, address.FromPubKey(hot.Public().(ed25519.PublicKey))
}

const request = `{"model":"m","messages":[{"role":"user","content":"the secret canary 7f3a"}]}`

func TestRoundTrip(t *testing.T) {
	k, self := minerKey(t, 1)
	body, clientReply, err := Seal(k.PublicKey(), self, "m", 16, true, []byte(request))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(body, []byte("canary")) {
		t.Fatal("the envelope carries the prompt in the clear")
	}
	if !IsEnvelope(body) {
		t.Fatal("IsEnvelope misses a sealed request")
	}
	env, err := DecodeEnvelope(body)
	if err != nil {
		t.Fatal(err)
	}
	if env.Model != "m" || env.MaxTokens != 16 || !env.Stream || env.Miner() != self {
		t.Fatalf("clear fields %+v", env)
	}
	got, minerReply, err := k.Open(self, env)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != request {
		t.Fatalf("opened %q", got)
	}
	msgs := []string{`{"delta":"hel"}`, `{"delta":"lo"}`, `{"finish":"stop"}`}
	for i, m := range msgs {
		sealed := minerReply.Seal([]byte(m), i == len(msgs)-1)
		if bytes.Contains(sealed, []byte("hel")) {
			t.Fatal("answer in the clear")
		}
		pt, final, err := clientReply.Open(sealed)
		if err != nil {
			t.Fatal(err)
		}
		if string(pt) != m || final != (i == len(msgs)-1) {
			t.Fatalf("message %d: %q final=%v", i, pt, final)
		}
	}
	if !clientReply.Done() {
		t.Fatal("client did not see the final message")
	}
	if _, _, err := clientReply.Open(minerReply.Seal([]byte("x"), true)); !errors.Is(err, ErrSealed) {
		t.Fatalf("message after the final one: %v", err)
	}
}

func TestRefusesTampering(t *testing.T) {
	k, self := minerKey(t, 1)
	other, otherAddr := minerKey(t, 2)
	body, _, err := Seal(k.PublicKey(), self, "m", 16, false, []byte(request))
	if err != nil {
		t.Fatal(err)
	}
	alter := func(f func(e *Envelope)) *Envelope {
		env, err := DecodeEnvelope(body)
		if err != nil {
			t.Fatal(err)
		}
		f(env)
		return env
	}
	for _, tc := range []struct {
		name string
		key  *PrivateKey
		self address.Address
		env  *Envelope
	}{
		{"max_tokens raised by the gateway", k, self, alter(func(e *Envelope) { e.MaxTokens = 4096 })},
		{"stream flipped", k, self, alter(func(e *Envelope) { e.Stream = true })},
		{"model changed", k, self, alter(func(e *Envelope) { e.Model = "other" })},
		{"ciphertext flipped", k, self, alter(func(e *Envelope) { e.Sealed.Ciphertext[0] ^= 1 })},
		{"another miner's key", other, self, alter(func(*Envelope) {})},
		{"delivered to another miner", other, otherAddr, alter(func(*Envelope) {})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := tc.key.Open(tc.self, tc.env); !errors.Is(err, ErrSealed) {
				t.Fatalf("opened: %v", err)
			}
		})
	}
}

func TestReplyDetectsReorderAndSwaps(t *testing.T) {
	k, self := minerKey(t, 1)
	body, clientReply, _ := Seal(k.PublicKey(), self, "m", 16, true, []byte(request))
	env, _ := DecodeEnvelope(body)
	_, minerReply, err := k.Open(self, env)
	if err != nil {
		t.Fatal(err)
	}
	first, second := minerReply.Seal([]byte("a"), false), minerReply.Seal([]byte("b"), true)
	if _, _, err := clientReply.Open(second); !errors.Is(err, ErrSealed) {
		t.Fatalf("reordered message opened: %v", err)
	}
	// A second request's answer cannot be spliced into this one.
	body2, _, _ := Seal(k.PublicKey(), self, "m", 16, true, []byte(request))
	env2, _ := DecodeEnvelope(body2)
	_, minerReply2, _ := k.Open(self, env2)
	if _, _, err := clientReply.Open(minerReply2.Seal([]byte("a"), false)); !errors.Is(err, ErrSealed) {
		t.Fatalf("another request's message opened: %v", err)
	}
	if _, _, err := clientReply.Open(first); err != nil {
		t.Fatal(err)
	}
	if clientReply.Done() {
		t.Fatal("done before the final message")
	}
}

func TestDecodeEnvelopeErrors(t *testing.T) {
	k, self := minerKey(t, 1)
	good, _, _ := Seal(k.PublicKey(), self, "m", 16, false, []byte(request))
	var env map[string]any
	json.Unmarshal(good, &env)
	mutate := func(f func(m map[string]any)) []byte {
		var m map[string]any
		json.Unmarshal(good, &m)
		f(m)
		b, _ := json.Marshal(m)
		return b
	}
	for name, body := range map[string][]byte{
		"not json":      []byte("{"),
		"trailing data": append(append([]byte{}, good...), []byte(" {}")...),
		"unknown field": mutate(func(m map[string]any) { m["messages"] = []any{} }),
		"no model":      mutate(func(m map[string]any) { delete(m, "model") }),
		"zero max":      mutate(func(m map[string]any) { m["max_tokens"] = 0 }),
		"bad miner":     mutate(func(m map[string]any) { m[Field].(map[string]any)["miner"] = "agora1xyz" }),
		"short enc":     mutate(func(m map[string]any) { m[Field].(map[string]any)["enc"] = "AAAA" }),
		"no ciphertext": mutate(func(m map[string]any) { delete(m[Field].(map[string]any), "ciphertext") }),
	} {
		if _, err := DecodeEnvelope(body); !errors.Is(err, ErrSealed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestKeyIsStableAndDistinct(t *testing.T) {
	a1, _ := minerKey(t, 1)
	a2, _ := minerKey(t, 1)
	b, _ := minerKey(t, 2)
	if !bytes.Equal(a1.PublicKey(), a2.PublicKey()) || bytes.Equal(a1.PublicKey(), b.PublicKey()) || len(a1.PublicKey()) != 32 {
		t.Fatal("derived keys are not a stable function of the hotkey")
	}
}

func FuzzDecodeEnvelope(f *testing.F) {
	k, self := minerKey(f, 1)
	good, _, _ := Seal(k.PublicKey(), self, "m", 16, true, []byte(request))
	f.Add(good)
	f.Add([]byte(`{"agora_sealed":{}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		env, err := DecodeEnvelope(body)
		if err != nil {
			return
		}
		// Only a real sealing of the request opens; the AEAD makes anything
		// else fail.
		if got, _, err := k.Open(self, env); err == nil && string(got) != request {
			t.Fatalf("a forged envelope opened to %q", got)
		}
	})
}

func FuzzReplyOpen(f *testing.F) {
	k, self := minerKey(f, 1)
	body, _, _ := Seal(k.PublicKey(), self, "m", 16, true, []byte(request))
	env, _ := DecodeEnvelope(body)
	_, r, _ := k.Open(self, env)
	f.Add(r.Seal([]byte("x"), false))
	f.Add([]byte(`{"agora_sealed":null}`))
	f.Fuzz(func(t *testing.T, msg []byte) {
		_, reply, _ := k.Open(self, env)
		reply.Open(msg) // must not panic; forging is covered by the AEAD
	})
}
