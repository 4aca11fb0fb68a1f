package wire

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/agoranet/agora/address"
)

// Receipt is a miner's signed statement of what it served.
type Receipt struct {
	Miner            string `json:"miner"`         // ed25519 public key, hex
	RequestHash      string `json:"request_hash"`  // sha256 of the request body, hex
	ResponseHash     string `json:"response_hash"` // sha256 of the response body (streams: of every data payload before the receipt)
	ModelID          string `json:"model_id"`
	PromptTokens     int    `json:"prompt_tokens"`
	CompletionTokens int    `json:"completion_tokens"`
	TTFTMillis       int64  `json:"ttft_ms"`
	DurationMillis   int64  `json:"duration_ms"`
	Price            uint64 `json:"price"` // base units
	Signature        string `json:"signature"`
}

const receiptDomain = "agora/wire-receipt/v1\x00"

func (r *Receipt) signBytes() []byte {
	b := []byte(receiptDomain)
	for _, s := range []string{r.Miner, r.RequestHash, r.ResponseHash, r.ModelID} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	for _, v := range []uint64{uint64(r.PromptTokens), uint64(r.CompletionTokens), uint64(r.TTFTMillis), uint64(r.DurationMillis), r.Price} {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	return b
}

// Hash is sha256 in hex, the form receipts carry.
func Hash(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// SignReceipt fills in the miner key and signature.
func SignReceipt(key ed25519.PrivateKey, r *Receipt) {
	r.Miner = hex.EncodeToString(key.Public().(ed25519.PublicKey))
	r.Signature = hex.EncodeToString(ed25519.Sign(key, r.signBytes()))
}

// ErrBadReceipt wraps every receipt that fails verification.
var ErrBadReceipt = errors.New("invalid receipt")

// Verify checks the receipt's signature, that it was signed by the expected
// miner hotkey, and that it covers this request and response.
func (r *Receipt) Verify(miner address.Address, requestBody []byte, responseHash string) error {
	pub, err := hex.DecodeString(r.Miner)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: bad miner key", ErrBadReceipt)
	}
	if address.FromPubKey(pub) != miner {
		return fmt.Errorf("%w: signed by %s, expected %s", ErrBadReceipt, address.FromPubKey(pub), miner)
	}
	sig, err := hex.DecodeString(r.Signature)
	if err != nil || !ed25519.Verify(pub, r.signBytes(), sig) {
		return fmt.Errorf("%w: signature does not verify", ErrBadReceipt)
	}
	if r.RequestHash != Hash(requestBody) {
		return fmt.Errorf("%w: covers another request", ErrBadReceipt)
	}
	if r.ResponseHash != responseHash {
		return fmt.Errorf("%w: covers another response", ErrBadReceipt)
	}
	return nil
}

// maxReceiptBytes bounds a receipt header or event.
const maxReceiptBytes = 4096

// EncodeHeader renders a receipt for the Agora-Receipt header.
func (r *Receipt) EncodeHeader() string {
	raw, _ := json.Marshal(r)
	return base64.StdEncoding.EncodeToString(raw)
}

// ParseReceiptHeader decodes an Agora-Receipt header.
func ParseReceiptHeader(h string) (*Receipt, error) {
	if len(h) > maxReceiptBytes*2 {
		return nil, fmt.Errorf("%w: header too long", ErrBadReceipt)
	}
	raw, err := base64.StdEncoding.DecodeString(h)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadReceipt, err)
	}
	return parseReceiptJSON(raw)
}

func parseReceiptJSON(raw []byte) (*Receipt, error) {
	if len(raw) > maxReceiptBytes {
		return nil, fmt.Errorf("%w: too long", ErrBadReceipt)
	}
	var r Receipt
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadReceipt, err)
	}
	if r.PromptTokens < 0 || r.CompletionTokens < 0 || r.TTFTMillis < 0 || r.DurationMillis < 0 {
		return nil, fmt.Errorf("%w: negative counts", ErrBadReceipt)
	}
	return &r, nil
}

// ReceiptEvent is the SSE event name of the final receipt in a stream.
const ReceiptEvent = "agora-receipt"

// StreamHasher accumulates a stream's data payloads into the response hash.
type StreamHasher struct{ buf []byte }

// Add records one data payload (the bytes after "data: ").
func (h *StreamHasher) Add(payload []byte) { h.buf = append(h.buf, Hash(payload)...) }

// Sum is the response hash of everything added: sha256 over the payloads' hashes.
func (h *StreamHasher) Sum() string { return Hash(h.buf) }

// WriteReceiptEvent writes the receipt as the stream's final SSE event.
func WriteReceiptEvent(w io.Writer, r *Receipt) error {
	raw, _ := json.Marshal(r)
	_, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ReceiptEvent, raw)
	return err
}

// Event is one server-sent event.
type Event struct {
	Name string
	Data []byte
}

// maxEventBytes bounds one SSE line from a miner.
const maxEventBytes = 1 << 20

// errStop ends ScanEvents early without an error.
var errStop = errors.New("stop scanning")

// ScanEvents reads an SSE stream line by line and calls fn with each data
// payload and the name of the event it belongs to (empty for plain data),
// until the stream ends or fn returns an error, which it returns. Every
// reader of Agora streams (gateway, agent) goes through it, so they agree
// on what an event is; one scanner reads the whole stream, since a second
// reader would miss what the first had buffered.
func ScanEvents(body io.Reader, fn func(Event) error) error {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 64<<10), maxEventBytes)
	var name string
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) == 0:
			name = ""
		case bytes.HasPrefix(line, []byte("event:")):
			name = strings.TrimSpace(string(line[len("event:"):]))
		case bytes.HasPrefix(line, []byte("data:")):
			payload := bytes.TrimPrefix(line[len("data:"):], []byte(" "))
			if err := fn(Event{Name: name, Data: append([]byte(nil), payload...)}); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read stream: %w", err)
	}
	return nil
}

// ReadStream reads an SSE stream: it calls onData for every data payload, and
// returns the receipt event that ends it together with the stream's hash.
func ReadStream(body io.Reader, onData func(Event) error) (*Receipt, string, error) {
	var h StreamHasher
	var rc *Receipt
	var rcErr error
	err := ScanEvents(body, func(e Event) error {
		if e.Name == ReceiptEvent {
			rc, rcErr = parseReceiptJSON(e.Data)
			return errStop
		}
		h.Add(e.Data)
		if onData != nil {
			return onData(e)
		}
		return nil
	})
	switch {
	case errors.Is(err, errStop):
		return rc, h.Sum(), rcErr
	case err != nil:
		return nil, "", err
	}
	return nil, h.Sum(), fmt.Errorf("%w: stream ended without a receipt", ErrBadReceipt)
}
