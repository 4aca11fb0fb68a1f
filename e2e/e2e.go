// Package e2e seals a completion request from a client to one miner, and the
// miner's answer back, so that the gateway in between routes and charges
// without reading either.
//
// The request is sealed with HPKE (RFC 9180, base mode,
// DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / AES-256-GCM) to the X25519
// key the miner publishes on chain with neuron serve. The miner derives that
// key from its hotkey seed, so there is nothing extra to store or back up.
//
// What stays in the clear, because the gateway needs it, is the envelope:
// the model, max_tokens and stream flag (routing and the maximum charge) and
// the target miner. These are bound to the ciphertext as associated data, so
// a gateway that changes them makes the miner refuse the request.
//
// The answer is sealed as Oblivious HTTP (RFC 9458) seals responses: both
// ends export a secret from the HPKE context, the miner draws a fresh random
// response nonce, and the AEAD key and base nonce are derived from the secret
// salted with the encapsulated key and that response nonce. The response
// nonce travels with the first message of the answer. So even if the same
// envelope were answered twice (a gateway replaying it), the two answers
// would be sealed under unrelated keys, never a two-time pad; the miner also
// refuses an envelope it has already answered. The answer is one AEAD
// message per response body or stream event, numbered in order; the last is
// sealed as final, so a client notices a stream the gateway cut short or
// reordered.
//
// An envelope carries its creation time (bound as associated data); a miner
// refuses envelopes older or newer than MaxAge, and remembers the ones it
// answered for as long as they could still be accepted.
package e2e

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/openai"
)

// Field is the JSON key that marks a sealed request or response.
const Field = "agora_sealed"

// NonceField is the JSON key of the response nonce, on the first message of
// a sealed answer.
const NonceField = "agora_response_nonce"

const (
	infoDomain      = "agora/e2e/v3\x00"
	keyDomain       = "agora/e2e-key/v1"
	responseContext = "agora/e2e/v3 response"
	// aeadKeySize, aeadNonceSize and aeadOverhead are AES-256-GCM's Nk, Nn
	// and tag size.
	aeadKeySize   = 32
	aeadNonceSize = 12
	aeadOverhead  = 16
	// responseNonceSize is max(Nn, Nk), as RFC 9458 sets it.
	responseNonceSize = max(aeadKeySize, aeadNonceSize)
)

// MaxAge is how far an envelope's creation time may be from the miner's
// clock, either way. Users' clocks drift more than servers', so the window is
// wider than the wire protocol's.
const MaxAge = 5 * time.Minute

// now is the sealing clock; tests replace it.
var now = time.Now

var (
	kem = hpke.DHKEM(ecdh.X25519())
	kdf = hpke.HKDFSHA256()
	// AES-256-GCM rather than ChaCha20-Poly1305 because browsers have it in
	// WebCrypto: the chat page seals with the browser's own crypto, exactly
	// as this package does, and needs no JavaScript cipher.
	aead = hpke.AES256GCM()
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
	// Created is when the client sealed it, in unix seconds.
	Created int64  `json:"created"`
	Sealed  Sealed `json:"agora_sealed"`

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
	case env.MaxTokens < 1 || env.MaxTokens > openai.MaxTokensCap:
		return nil, fmt.Errorf("%w: envelope max_tokens must be between 1 and %d", ErrSealed, openai.MaxTokensCap)
	case env.Created <= 0:
		return nil, fmt.Errorf("%w: envelope needs its creation time", ErrSealed)
	case len(env.Sealed.Enc) != 32:
		return nil, fmt.Errorf("%w: encapsulated key is %d bytes, want 32", ErrSealed, len(env.Sealed.Enc))
	case len(env.Sealed.Ciphertext) < aeadOverhead:
		return nil, fmt.Errorf("%w: ciphertext too short", ErrSealed)
	}
	return &env, nil
}

// Miner is the address the envelope is sealed to.
func (e *Envelope) Miner() address.Address { return e.miner }

// ID names the envelope for a replay cache: the hash of its encapsulated key,
// which is fresh for every sealing, so any replay of it (even with altered
// clear fields, which would not open anyway) has the same ID.
func (e *Envelope) ID() string {
	sum := sha256.Sum256(e.Sealed.Enc)
	return string(sum[:])
}

// ErrStale is returned for an envelope created outside MaxAge of the miner's clock.
var ErrStale = errors.New("sealed request is too old or from the future")

// CheckFresh refuses an envelope created more than MaxAge from now.
func (e *Envelope) CheckFresh(t time.Time) error {
	at := time.Unix(e.Created, 0)
	if d := t.Sub(at); d > MaxAge || d < -MaxAge {
		return fmt.Errorf("%w: created %s off the miner's clock (allowed %s)", ErrStale, d.Round(time.Second), MaxAge)
	}
	return nil
}

// info binds the HPKE context to one miner.
func info(miner address.Address) []byte { return append([]byte(infoDomain), miner[:]...) }

// aad binds the clear fields to the ciphertext.
func (e *Envelope) aad() []byte {
	b := []byte(infoDomain)
	b = binary.BigEndian.AppendUint32(b, uint32(len(e.Model)))
	b = append(b, e.Model...)
	b = binary.BigEndian.AppendUint64(b, uint64(e.MaxTokens))
	b = binary.BigEndian.AppendUint64(b, uint64(e.Created))
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
	if maxTokens < 1 || maxTokens > openai.MaxTokensCap {
		return nil, nil, fmt.Errorf("seal request: max_tokens must be between 1 and %d", openai.MaxTokensCap)
	}
	env := Envelope{Model: model, MaxTokens: maxTokens, Stream: stream, Created: now().Unix(), Sealed: Sealed{Miner: miner.String(), Enc: enc}, miner: miner}
	if env.Sealed.Ciphertext, err = s.Seal(env.aad(), request); err != nil {
		return nil, nil, fmt.Errorf("seal request: %w", err)
	}
	secret, err := s.Export(responseContext, responseNonceSize)
	if err != nil {
		return nil, nil, fmt.Errorf("seal request: %w", err)
	}
	body, err := json.Marshal(env)
	if err != nil {
		return nil, nil, err
	}
	// The client learns the response nonce from the answer's first message.
	return body, &Reply{secret: secret, enc: enc}, nil
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
	secret, err := r.Export(responseContext, responseNonceSize)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrSealed, err)
	}
	nonce := make([]byte, responseNonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return nil, nil, fmt.Errorf("response nonce: %w", err)
	}
	reply := &Reply{secret: secret, enc: env.Sealed.Enc}
	if err := reply.derive(nonce); err != nil {
		return nil, nil, err
	}
	return request, reply, nil
}

// Reply seals (miner) or opens (client) the messages of one answer, in
// order. It is not safe for concurrent use.
type Reply struct {
	secret []byte // exported from the HPKE context
	enc    []byte // the request's encapsulated key
	// responseNonce is drawn by the miner; nil on the client until the first
	// message brings it.
	responseNonce []byte
	sentNonce     bool
	aead          cipher.AEAD
	baseNonce     []byte
	seq           uint64
	closed        bool
}

type sealedMessage struct {
	Sealed        []byte `json:"agora_sealed"`
	ResponseNonce []byte `json:"agora_response_nonce,omitempty"`
}

// derive sets the answer's key and base nonce from the exported secret, the
// encapsulated key and the response nonce (RFC 9458, section 4.4).
func (r *Reply) derive(responseNonce []byte) error {
	salt := append(append([]byte{}, r.enc...), responseNonce...)
	prk, err := hkdf.Extract(sha256.New, r.secret, salt)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrSealed, err)
	}
	key, err := hkdf.Expand(sha256.New, prk, "key", aeadKeySize)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrSealed, err)
	}
	base, err := hkdf.Expand(sha256.New, prk, "nonce", aeadNonceSize)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrSealed, err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrSealed, err)
	}
	c, err := cipher.NewGCM(block)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrSealed, err)
	}
	r.responseNonce, r.aead, r.baseNonce = responseNonce, c, base
	return nil
}

// nonce is the base nonce XOR the message's sequence number, as HPKE numbers
// its messages.
func (r *Reply) nonce() []byte {
	n := append([]byte{}, r.baseNonce...)
	var seq [8]byte
	binary.BigEndian.PutUint64(seq[:], r.seq)
	for i := range seq {
		n[len(n)-8+i] ^= seq[i]
	}
	return n
}

func finalAAD(final bool) []byte {
	if final {
		return []byte("final")
	}
	return []byte("more")
}

// Seal seals the next message of the answer as {"agora_sealed": "..."}; the
// first one also carries the response nonce, the last one is final. Only the
// miner's Reply (from Open) seals.
func (r *Reply) Seal(plaintext []byte, final bool) []byte {
	m := sealedMessage{}
	if r.aead != nil {
		m.Sealed = r.aead.Seal(nil, r.nonce(), plaintext, finalAAD(final))
		if !r.sentNonce {
			m.ResponseNonce, r.sentNonce = r.responseNonce, true
		}
	}
	r.seq++
	out, _ := json.Marshal(m)
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
	switch {
	case r.aead == nil && len(m.ResponseNonce) != responseNonceSize:
		return nil, false, fmt.Errorf("%w: the answer's first message carries no %d-byte response nonce", ErrSealed, responseNonceSize)
	case r.aead == nil:
		if err := r.derive(m.ResponseNonce); err != nil {
			return nil, false, err
		}
	case m.ResponseNonce != nil:
		return nil, false, fmt.Errorf("%w: message %d carries a second response nonce", ErrSealed, r.seq)
	}
	for _, final := range []bool{false, true} {
		if pt, err := r.aead.Open(nil, r.nonce(), m.Sealed, finalAAD(final)); err == nil {
			r.seq++
			r.closed = final
			return pt, final, nil
		}
	}
	if r.seq == 0 {
		// Keys from a nonce that does not open the first message are useless;
		// forget them so the real first message can still be opened.
		r.aead, r.baseNonce, r.responseNonce = nil, nil, nil
	}
	return nil, false, fmt.Errorf("%w: message %d does not open (altered, reordered or from another request)", ErrSealed, r.seq)
}

// Done says whether the final message has been opened.
func (r *Reply) Done() bool { return r.closed }
