package wire

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/agoranet/agora/address"
)

// pooled keeps many idle connections per host: a gateway or miner sends a
// host many concurrent requests, and net/http's default of two idle
// connections per host would redial for most of them.
var pooled = func() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	return t
}()

// NewHTTPClient is an HTTP client for service-to-service traffic (gateway
// to miner, miner to upstream, validator to miner): a shared connection
// pool sized for concurrency, and an overall timeout.
func NewHTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{Transport: pooled, Timeout: timeout}
}

// Client sends signed requests from a hotkey.
type Client struct {
	Key  ed25519.PrivateKey
	HTTP *http.Client
	Now  func() time.Time
}

// NewClient makes a client signing with key.
func NewClient(key ed25519.PrivateKey, hc *http.Client) *Client {
	if hc == nil {
		hc = NewHTTPClient(10 * time.Minute)
	}
	return &Client{Key: key, HTTP: hc, Now: time.Now}
}

// Post sends a signed POST of body to url, addressed to receiver.
func (c *Client) Post(ctx context.Context, url string, receiver address.Address, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	Sign(req, c.Key, receiver, body, c.Now())
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("post %s: %w", url, err)
	}
	return resp, nil
}

// ReadPlain reads a non-streamed response and verifies its receipt.
func ReadPlain(resp *http.Response, miner address.Address, requestBody []byte, maxBody int64) ([]byte, *Receipt, error) {
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, nil, err
	}
	if int64(len(body)) > maxBody {
		return nil, nil, fmt.Errorf("response over %d bytes", maxBody)
	}
	h := resp.Header.Get(HeaderReceipt)
	if h == "" {
		return body, nil, fmt.Errorf("%w: response carries no receipt", ErrBadReceipt)
	}
	r, err := ParseReceiptHeader(h)
	if err != nil {
		return body, nil, err
	}
	return body, r, r.Verify(miner, requestBody, Hash(body))
}
