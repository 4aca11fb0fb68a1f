package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/internal/testkit"
	"github.com/agoranet/agora/openai"
)

func minerKey(t testing.TB, seed byte) (*PrivateKey, address.Address) {
	t.Helper()
	hot, a := testkit.Key(seed)
	k, err := DeriveKey(hot)
	if err != nil {
		t.Fatal(err)
	}
	return k, a
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
		{"creation time moved", k, self, alter(func(e *Envelope) { e.Created++ })},
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
		"huge max":      mutate(func(m map[string]any) { m["max_tokens"] = 1 << 40 }),
		"max over cap":  mutate(func(m map[string]any) { m["max_tokens"] = openai.MaxTokensCap + 1 }),
		"no created":    mutate(func(m map[string]any) { delete(m, "created") }),
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
	f.Add(r.Seal([]byte("y"), true))
	f.Add([]byte(`{"agora_sealed":null}`))
	f.Add([]byte(`{"agora_sealed":"AAAA","agora_response_nonce":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}`))
	f.Fuzz(func(t *testing.T, msg []byte) {
		// The client's side: a fresh Reply opening a first message, then the
		// same bytes again as a second one. Neither may panic, and nothing
		// but the miner's own sealing opens (the AEAD covers forging).
		_, client, err := Seal(k.PublicKey(), self, "m", 16, true, []byte(request))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := client.Open(msg); err == nil {
			t.Fatalf("a message no miner sealed opened: %q", msg)
		}
		_, reply, _ := k.Open(self, env)
		reply.Open(msg)
		reply.Open(msg)
	})
}

// sealedCiphertext pulls the AEAD output out of a sealed answer message.
func sealedCiphertext(t *testing.T, msg []byte) []byte {
	t.Helper()
	var m struct {
		Sealed []byte `json:"agora_sealed"`
	}
	if err := json.Unmarshal(msg, &m); err != nil {
		t.Fatal(err)
	}
	return m.Sealed
}

// TestReplayedEnvelopeGetsFreshKeys is hole 5: a gateway that replays one
// envelope (and a miner that answered it twice) must not get two answers
// under the same key and nonces. With known plaintexts, equal keystreams show
// as c1 XOR c2 == p1 XOR p2.
func TestReplayedEnvelopeGetsFreshKeys(t *testing.T) {
	k, self := minerKey(t, 1)
	body, _, err := Seal(k.PublicKey(), self, "m", 16, true, []byte(request))
	if err != nil {
		t.Fatal(err)
	}
	env, err := DecodeEnvelope(body)
	if err != nil {
		t.Fatal(err)
	}
	_, first, err := k.Open(self, env)
	if err != nil {
		t.Fatal(err)
	}
	_, second, err := k.Open(self, env)
	if err != nil {
		t.Fatal(err)
	}
	p1, p2 := []byte(`{"delta":"the answer is yes"}`), []byte(`{"delta":"the answer is no!"}`)
	for i := range 3 {
		c1 := sealedCiphertext(t, first.Seal(p1, i == 2))
		c2 := sealedCiphertext(t, second.Seal(p2, i == 2))
		same := true
		for j := range p1 {
			if c1[j]^c2[j] != p1[j]^p2[j] {
				same = false
			}
		}
		if same {
			t.Fatalf("message %d: both answers share a keystream", i)
		}
		if bytes.Equal(c1[len(p1):], c2[len(p2):]) {
			t.Fatalf("message %d: equal tags", i)
		}
	}
}

func TestTamperedResponseNonceFails(t *testing.T) {
	k, self := minerKey(t, 1)
	body, clientReply, _ := Seal(k.PublicKey(), self, "m", 16, false, []byte(request))
	env, _ := DecodeEnvelope(body)
	_, minerReply, err := k.Open(self, env)
	if err != nil {
		t.Fatal(err)
	}
	genuine := minerReply.Seal([]byte(`{"ok":true}`), true)
	var m map[string][]byte
	if err := json.Unmarshal(genuine, &m); err != nil || len(m[NonceField]) != 32 {
		t.Fatalf("first message %s carries no response nonce", genuine)
	}
	for name, mut := range map[string]func(m map[string][]byte){
		"flipped":    func(m map[string][]byte) { m[NonceField][0] ^= 1 },
		"missing":    func(m map[string][]byte) { delete(m, NonceField) },
		"short":      func(m map[string][]byte) { m[NonceField] = m[NonceField][:16] },
		"all zeroes": func(m map[string][]byte) { m[NonceField] = make([]byte, 32) },
	} {
		c := map[string][]byte{Field: append([]byte{}, m[Field]...), NonceField: append([]byte{}, m[NonceField]...)}
		mut(c)
		raw, _ := json.Marshal(c)
		if _, _, err := clientReply.Open(raw); !errors.Is(err, ErrSealed) {
			t.Errorf("%s response nonce: opened (%v)", name, err)
		}
	}
	// The genuine message still opens after the failed attempts.
	if pt, final, err := clientReply.Open(genuine); err != nil || !final || string(pt) != `{"ok":true}` {
		t.Fatalf("genuine answer: %q %v %v", pt, final, err)
	}
}

func TestEnvelopeFreshness(t *testing.T) {
	k, self := minerKey(t, 1)
	body, _, _ := Seal(k.PublicKey(), self, "m", 16, false, []byte(request))
	env, _ := DecodeEnvelope(body)
	at := time.Unix(env.Created, 0)
	for _, tc := range []struct {
		name string
		now  time.Time
		ok   bool
	}{
		{"now", at, true},
		{"within the window", at.Add(MaxAge - time.Second), true},
		{"too old", at.Add(MaxAge + time.Second), false},
		{"from the future", at.Add(-MaxAge - time.Second), false},
	} {
		if err := env.CheckFresh(tc.now); (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	b2, _, _ := Seal(k.PublicKey(), self, "m", 16, false, []byte(request))
	env2, _ := DecodeEnvelope(b2)
	if env.ID() == env2.ID() {
		t.Fatal("two sealings share an ID")
	}
}

func TestSealRefusesHugeMaxTokens(t *testing.T) {
	k, self := minerKey(t, 1)
	if _, _, err := Seal(k.PublicKey(), self, "m", 1<<40, false, []byte(request)); err == nil {
		t.Fatal("sealed a request with max_tokens 1<<40")
	}
}
