// Package wire is the signed off-chain protocol between gateways, validators
// and miners: OpenAI-compatible HTTP whose every request is signed by the
// sender's hotkey over the whole body and its routing fields, verified by the
// receiver before anything else, and whose every response ends with a receipt
// signed by the miner.
package wire

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/agoranet/agora/address"
)

// Request headers. Everything a signature covers travels in these headers
// or the body; nothing the receiver acts on is unsigned.
const (
	HeaderSigner    = "Agora-Signer"    // signer's ed25519 public key, hex
	HeaderReceiver  = "Agora-Receiver"  // receiver's hotkey address, bech32
	HeaderTimestamp = "Agora-Timestamp" // unix milliseconds
	HeaderNonce     = "Agora-Nonce"     // UUID v4
	HeaderSignature = "Agora-Signature" // ed25519 signature, hex
	HeaderReceipt   = "Agora-Receipt"   // response: base64 JSON receipt
)

// MaxSkew is how far a request's timestamp may be from the receiver's clock.
const MaxSkew = 8 * time.Second

const requestDomain = "agora/wire-request/v1\x00"

// RequestSignBytes are the bytes a sender signs: a domain tag, the method,
// path, timestamp, nonce and receiver, each length-prefixed, and sha256(body).
func RequestSignBytes(method, path string, timestampMs int64, nonce string, receiver address.Address, body []byte) []byte {
	sum := sha256.Sum256(body)
	b := []byte(requestDomain)
	for _, s := range []string{method, path, nonce} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(timestampMs))
	b = append(b, receiver[:]...)
	return append(b, sum[:]...)
}

// NewNonce returns a random UUID v4.
func NewNonce() string {
	var u [16]byte
	_, _ = rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	h := hex.EncodeToString(u[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// Sign sets the signing headers on req for body, from key to receiver.
func Sign(req *http.Request, key ed25519.PrivateKey, receiver address.Address, body []byte, now time.Time) {
	ts := now.UnixMilli()
	nonce := NewNonce()
	sig := ed25519.Sign(key, RequestSignBytes(req.Method, req.URL.Path, ts, nonce, receiver, body))
	req.Header.Set(HeaderSigner, hex.EncodeToString(key.Public().(ed25519.PublicKey)))
	req.Header.Set(HeaderReceiver, receiver.String())
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderNonce, nonce)
	req.Header.Set(HeaderSignature, hex.EncodeToString(sig))
}

// Rejection reasons; each maps to an HTTP status in the server.
var (
	ErrUnsigned     = errors.New("request is not signed")
	ErrBadSignature = errors.New("signature does not verify")
	ErrStale        = errors.New("timestamp outside the allowed window")
	ErrReplay       = errors.New("nonce already used")
	ErrWrongTarget  = errors.New("request is addressed to another hotkey")
	ErrNotAllowed   = errors.New("signer is not allowed")
)

// Signed is a verified request's identity.
type Signed struct {
	Signer    ed25519.PublicKey
	Address   address.Address
	Timestamp time.Time
	Nonce     string
}

// parseHeaders decodes the signing headers without judging them.
func parseHeaders(h http.Header) (pub ed25519.PublicKey, receiver address.Address, ts int64, nonce string, sig []byte, err error) {
	pk, sg, rc, tsText := h.Get(HeaderSigner), h.Get(HeaderSignature), h.Get(HeaderReceiver), h.Get(HeaderTimestamp)
	nonce = h.Get(HeaderNonce)
	if pk == "" || sg == "" || rc == "" || tsText == "" || nonce == "" {
		return nil, receiver, 0, "", nil, ErrUnsigned
	}
	if pub, err = hex.DecodeString(pk); err != nil || len(pub) != ed25519.PublicKeySize {
		return nil, receiver, 0, "", nil, fmt.Errorf("%w: bad %s", ErrUnsigned, HeaderSigner)
	}
	if sig, err = hex.DecodeString(sg); err != nil || len(sig) != ed25519.SignatureSize {
		return nil, receiver, 0, "", nil, fmt.Errorf("%w: bad %s", ErrUnsigned, HeaderSignature)
	}
	if receiver, err = address.Parse(rc); err != nil {
		return nil, receiver, 0, "", nil, fmt.Errorf("%w: bad %s", ErrUnsigned, HeaderReceiver)
	}
	if ts, err = strconv.ParseInt(tsText, 10, 64); err != nil {
		return nil, receiver, 0, "", nil, fmt.Errorf("%w: bad %s", ErrUnsigned, HeaderTimestamp)
	}
	if len(nonce) != 36 {
		return nil, receiver, 0, "", nil, fmt.Errorf("%w: bad %s", ErrUnsigned, HeaderNonce)
	}
	return pub, receiver, ts, nonce, sig, nil
}
