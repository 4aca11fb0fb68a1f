package gateway

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/chain/tx"
)

// SessionTokenPrefix starts every session bearer token.
const SessionTokenPrefix = "agora-sk-"

// NewSessionToken packs a session key's seed and its delegation into a bearer
// token an unmodified OpenAI client can use as its API key. Whoever holds the
// token can spend up to the delegation's cap on its channel: treat it like a
// key with a spending limit.
func NewSessionToken(seed []byte, d *tx.Delegation) (string, error) {
	raw, err := tx.Marshal(&tx.SessionToken{Seed: seed, Delegation: d})
	if err != nil {
		return "", err
	}
	return SessionTokenPrefix + base64.RawURLEncoding.EncodeToString(raw), nil
}

// ErrBadToken is returned for bearer tokens that are not session tokens.
var ErrBadToken = errors.New("invalid session token")

// ParseSessionToken unpacks a bearer token.
func ParseSessionToken(s string) (ed25519.PrivateKey, *tx.Delegation, error) {
	rest, ok := strings.CutPrefix(s, SessionTokenPrefix)
	if !ok || len(rest) > 4096 {
		return nil, nil, ErrBadToken
	}
	raw, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrBadToken, err)
	}
	var t tx.SessionToken
	if err := proto.Unmarshal(raw, &t); err != nil || len(t.Seed) != ed25519.SeedSize || t.Delegation == nil {
		return nil, nil, ErrBadToken
	}
	key := ed25519.NewKeyFromSeed(t.Seed)
	if string(key.Public().(ed25519.PublicKey)) != string(t.Delegation.SessionPubKey) {
		return nil, nil, fmt.Errorf("%w: key does not match its delegation", ErrBadToken)
	}
	return key, t.Delegation, nil
}
