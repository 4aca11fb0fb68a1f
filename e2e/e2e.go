// Package e2e seals a completion request from a client to one miner, and the
// miner's answer back, so that the gateway in between routes and charges
// without reading either.
//
// The request is sealed with HPKE (RFC 9180, base mode,
// DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / ChaCha20-Poly1305) to the X25519
// key the miner publishes on chain with neuron serve. The miner derives that
// key from its hotkey seed, so there is nothing extra to store or back up.
//
// What stays in the clear, because the gateway needs it, is the envelope:
// the model, max_tokens and stream flag (routing and the maximum charge) and
// the target miner. These are bound to the ciphertext as associated data, so
// a gateway that changes them makes the miner refuse the request.
//
// The answer is sealed with a key both ends export from the HPKE context
// (as Oblivious HTTP does), one AEAD message per response body or stream
// event, numbered in order. The last message is sealed as final, so a
// client notices a stream the gateway cut short or reordered.
package e2e

import (
	"bytes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/hpke"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/agoranet/agora/address"
)

// Field is the JSON key that marks a sealed request or response.
const Field = "agora_sealed"

const (
	infoDomain      = "agora/e2e/v1\x00"
	keyDomain       = "agora/e2e-key/v1"
	responseContext = "agora/e2e/v1 response"
)

var (
	kem  = hpke.DHKEM(ecdh.X25519())
	kdf  = hpke.HKDFSHA256()
	aead = hpke.ChaCha20Poly1305()
)

// ErrSealed wraps every failure to open or parse sealed data.
var ErrSealed = errors.New("sealed message")

// PrivateKey is a miner's decryption key.
type PrivateKey struct{ k hpke.PrivateKey }

// DeriveKey derives a miner's X25519 key from its ed25519 hotkey seed.
func DeriveKey(hotkey ed25519.PrivateKey) (*PrivateKey, error) {
	ikm, err := hkdf.Key(sha256.New, hotkey.Seed(), nil, keyDomain, 32)
	if err != nil {
		return nil, fmt.Errorf("derive e2e key: %w", err)
	}
	k, err := kem.DeriveKeyPair(ikm)
	if err != nil {
		return nil, fmt.Errorf("derive e2e key: %w", err)
	}
	return &PrivateKey{k: k}, nil
}

// PublicKey is the 32-byte X25519 key to publish.
func (k *PrivateKey) PublicKey() []byte { return k.k.PublicKey().Bytes() }

// Envelope is the body a client sends for a sealed request: the fields a
// gateway needs, in the clear, and the sealed OpenAI request.
type Envelope struct {
	Model     string `json:"model"`
	MaxTokens int    `json:"max_tokens"`
	Stream    bool   `json:"stream,omitempty"`
	Sealed    Sealed `json:"agora_sealed"`

	miner address.Address
}

// Sealed is the encrypted part of an envelope.
type Sealed struct {
	Miner      string `json:"miner"`      // the hotkey address it is sealed to
	Enc        []byte `json:"enc"`        // HPKE encapsulated key
	Ciphertext []byte `json:"ciphertext"` // the OpenAI request JSON
}

// IsEnvelope says whether body looks like a sealed request, cheaply; a
// positive answer still has to pass DecodeEnvelope.
func IsEnvelope(body []byte) bool {
	return bytes.Contains(body, []byte(`"`+Field+`"`))
}

// Detect returns the envelope of a sealed request, or nil for a request in
// the clear.
func Detect(body []byte) (*Envelope, error) {
	if !IsEnvelope(body) {
		return nil, nil
	}
	return DecodeEnvelope(body)
}

// DecodeEnvelope parses and checks a sealed request's envelope.
func DecodeEnvelope(body []byte) (*Envelope, error) {
	var env Envelope
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil {
		return nil, fmt.Errorf("%w: envelope: %v", ErrSealed, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the envelope", ErrSealed)
	}
	var err error
	env.miner, err = address.Parse(env.Sealed.Miner)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: envelope miner: %v", ErrSealed, err)
	case env.Model == "":
		return nil, fmt.Errorf("%w: envelope needs a model", ErrSealed)
	case env.MaxTokens < 1:
		return nil, fmt.Errorf("%w: envelope needs max_tokens of at least 1", ErrSealed)
	case len(env.Sealed.Enc) != 32:
		return nil, fmt.Errorf("%w: encapsulated key is %d bytes, want 32", ErrSealed, len(env.Sealed.Enc))
	case len(env.Sealed.Ciphertext) < chacha20poly1305.Overhead:
		return nil, fmt.Errorf("%w: ciphertext too short", ErrSealed)
	}
	return &env, nil
}

// Miner is the address the envelope is sealed to.
func (e *Envelope) Miner() address.Address { return e.miner }

// info binds the HPKE context to one miner.
func info(miner address.Address) []byte { return append([]byte(infoDomain), miner[:]...) }

// aad binds the clear fields to the ciphertext.
func (e *Envelope) aad() []byte {
	b := []byte(infoDomain)
	b = binary.BigEndian.AppendUint32(b, uint32(len(e.Model)))
	b = append(b, e.Model...)
	b = binary.BigEndian.AppendUint64(b, uint64(e.MaxTokens))
	return strconv.AppendBool(b, e.Stream)
}

// Seal seals an OpenAI request to a miner's published key. It returns the
// envelope's JSON and the Reply that opens the miner's answer.
func Seal(minerKey []byte, miner address.Address, model string, maxTokens int, stream bool, request []byte) ([]byte, *Reply, error) {
	pub, err := kem.NewPublicKey(minerKey)
	if err != nil {
		return nil, nil, fmt.Errorf("miner %s e2e key: %w", miner, err)
	}
	enc, s, err := hpke.NewSender(pub, kdf, aead, info(miner))
	if err != nil {
		return nil, nil, fmt.Errorf("seal request: %w", err)
	}
	env := Envelope{Model: model, MaxTokens: maxTokens, Stream: stream, Sealed: Sealed{Miner: miner.String(), Enc: enc}, miner: miner}
	if env.Sealed.Ciphertext, err = s.Seal(env.aad(), request); err != nil {
		return nil, nil, fmt.Errorf("seal request: %w", err)
	}
	key, err := s.Export(responseContext, chacha20poly1305.KeySize)
	if err != nil {
		return nil, nil, fmt.Errorf("seal request: %w", err)
	}
	c, err := chacha20poly1305.New(key)
	if err != nil {
		return nil, nil, err
	}
	body, err := json.Marshal(env)
	if err != nil {
		return nil, nil, err
	}
	return body, &Reply{aead: c}, nil
}

// Open is the miner's side: it opens the request in env (which must be
// sealed to self) and returns it with the Reply that seals the answer.
func (k *PrivateKey) Open(self address.Address, env *Envelope) ([]byte, *Reply, error) {
	if env.Miner() != self {
		return nil, nil, fmt.Errorf("%w: sealed to %s, not to this miner", ErrSealed, env.Sealed.Miner)
	}
	r, err := hpke.NewRecipient(env.Sealed.Enc, k.k, kdf, aead, info(self))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrSealed, err)
	}
	request, err := r.Open(env.aad(), env.Sealed.Ciphertext)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: request does not open (wrong key, or the envelope was altered)", ErrSealed)
	}
	key, err := r.Export(responseContext, chacha20poly1305.KeySize)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrSealed, err)
	}
	c, err := chacha20poly1305.New(key)
	if err != nil {
		return nil, nil, err
	}
	return request, &Reply{aead: c}, nil
}

// Reply seals (miner) or opens (client) the messages of one answer, in
// order. It is not safe for concurrent use.
type Reply struct {
	aead   cipher.AEAD
	seq    uint64
	closed bool
}

type sealedMessage struct {
	Sealed []byte `json:"agora_sealed"`
}

func (r *Reply) nonce() []byte {
	n := make([]byte, chacha20poly1305.NonceSize)
	binary.BigEndian.PutUint64(n[4:], r.seq)
	return n
}

func finalAAD(final bool) []byte {
	if final {
		return []byte("final")
	}
	return []byte("more")
}

// Seal seals the next message of the answer as {"agora_sealed": "..."}; the
// last one is final.
func (r *Reply) Seal(plaintext []byte, final bool) []byte {
	ct := r.aead.Seal(nil, r.nonce(), plaintext, finalAAD(final))
	r.seq++
	out, _ := json.Marshal(sealedMessage{Sealed: ct})
	return out
}

// Open opens the next message of the answer and says whether it was the last.
func (r *Reply) Open(message []byte) ([]byte, bool, error) {
	if r.closed {
		return nil, false, fmt.Errorf("%w: message after the final one", ErrSealed)
	}
	var m sealedMessage
	if err := json.Unmarshal(message, &m); err != nil || m.Sealed == nil {
		return nil, false, fmt.Errorf("%w: answer is not sealed", ErrSealed)
	}
	for _, final := range []bool{false, true} {
		if pt, err := r.aead.Open(nil, r.nonce(), m.Sealed, finalAAD(final)); err == nil {
			r.seq++
			r.closed = final
			return pt, final, nil
		}
	}
	return nil, false, fmt.Errorf("%w: message %d does not open (altered, reordered or from another request)", ErrSealed, r.seq)
}

// Done says whether the final message has been opened.
func (r *Reply) Done() bool { return r.closed }
