package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// DefaultModelURL is what `agora model pull` fetches without arguments:
// SmolLM2-135M-Instruct, Q8_0, from the publisher's own GGUF repository.
const DefaultModelURL = "https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/resolve/main/smollm2-135m-instruct-q8_0.gguf"

// KnownModels maps short names to download URLs.
var KnownModels = map[string]string{
	"smollm2-135m-instruct": DefaultModelURL,
}

// PullProgress receives byte counts as a download proceeds (total −1 if unknown).
type PullProgress func(done, total int64)

// Pulled describes a downloaded model file.
type Pulled struct {
	Path     string `json:"path"`
	SHA256   string `json:"sha256"`
	Verified string `json:"verified_by"` // "expected sha256", "server sha256", or "" (nothing to check against)
}

// Pull downloads url into dir, resuming a previous .partial file with an HTTP
// Range request, and checks the file's sha256 against wantSHA, else against
// the sha256 the server states (Hugging Face's X-Linked-Etag, which it sends
// on the redirect to its CDN). A file already in dir is reused.
func Pull(ctx context.Context, client *http.Client, url, dir, wantSHA string, progress PullProgress) (Pulled, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Pulled{}, err
	}
	u, err := neturl.Parse(url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return Pulled{}, fmt.Errorf("%q is not an http(s) URL", url)
	}
	name := path.Base(u.Path)
	if strings.HasSuffix(u.Path, "/") || name == "." || name == "/" || strings.ContainsAny(name, `\:`) {
		return Pulled{}, fmt.Errorf("cannot name a file from %q", url)
	}
	final := filepath.Join(dir, name)
	partial := final + ".partial"
	if _, err := os.Stat(final); err == nil {
		sum, err := fileSHA256(final)
		if err != nil {
			return Pulled{}, err
		}
		if wantSHA != "" && !strings.EqualFold(sum, wantSHA) {
			return Pulled{}, fmt.Errorf("%w: %s has %s, want %s (delete it to download again)", ErrChecksum, final, sum, wantSHA)
		}
		writeIDCache(final, sum)
		return Pulled{Path: final, SHA256: sum, Verified: verifiedBy(wantSHA, "expected sha256")}, nil
	}
	serverSHA, err := download(ctx, client, url, partial, progress)
	if err != nil {
		return Pulled{}, err
	}
	sum, err := fileSHA256(partial)
	if err != nil {
		return Pulled{}, err
	}
	p := Pulled{Path: final, SHA256: sum}
	switch {
	case wantSHA != "":
		p.Verified = "expected sha256"
	case serverSHA != "":
		wantSHA, p.Verified = serverSHA, "server sha256"
	}
	if wantSHA != "" && !strings.EqualFold(sum, wantSHA) {
		os.Remove(partial)
		return Pulled{}, fmt.Errorf("%w: %s has %s, want %s (%s)", ErrChecksum, name, sum, wantSHA, p.Verified)
	}
	if err := os.Rename(partial, final); err != nil {
		return Pulled{}, err
	}
	writeIDCache(final, sum)
	return p, nil
}

func verifiedBy(want, how string) string {
	if want == "" {
		return ""
	}
	return how
}

// download fetches url into partial, appending to what is there when the
// server honours a Range request, and returns the sha256 the server states.
func download(ctx context.Context, client *http.Client, url, partial string, progress PullProgress) (string, error) {
	var serverSHA string
	c := *client
	prev := client.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.Response != nil {
			if s := linkedSHA(req.Response.Header); s != "" {
				serverSHA = s
			}
		}
		if prev != nil {
			return prev(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	for attempt := 0; ; attempt++ {
		var have int64
		if st, err := os.Stat(partial); err == nil {
			have = st.Size()
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return "", err
		}
		if have > 0 {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-", have))
		}
		resp, err := c.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return "", ctx.Err()
			}
			return "", fmt.Errorf("download %s: %w (offline? use --model FILE.gguf, or 'agora model gen' for an untrained model)", url, err)
		}
		if s := linkedSHA(resp.Header); s != "" {
			serverSHA = s
		}
		flags := os.O_CREATE | os.O_WRONLY
		switch {
		case resp.StatusCode == http.StatusPartialContent && have > 0:
			flags |= os.O_APPEND
		case resp.StatusCode == http.StatusOK:
			flags |= os.O_TRUNC // the server ignored the range: start over
			have = 0
		case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && attempt == 0:
			// The partial file is complete or longer than the file: its
			// content cannot be trusted, so download it again.
			resp.Body.Close()
			if err := os.Remove(partial); err != nil {
				return "", err
			}
			continue
		default:
			resp.Body.Close()
			return "", fmt.Errorf("download %s: HTTP %s", url, resp.Status)
		}
		f, err := os.OpenFile(partial, flags, 0o644)
		if err != nil {
			resp.Body.Close()
			return "", err
		}
		total := int64(-1)
		if resp.ContentLength >= 0 {
			total = have + resp.ContentLength
		}
		_, err = io.Copy(f, &progressReader{r: resp.Body, done: have, total: total, fn: progress})
		resp.Body.Close()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return "", fmt.Errorf("download %s: %w (run again to resume)", url, err)
		}
		if total >= 0 {
			if st, err := os.Stat(partial); err == nil && st.Size() != total {
				return "", fmt.Errorf("download %s: got %d of %d bytes (run again to resume)", url, st.Size(), total)
			}
		}
		return serverSHA, nil
	}
}

// linkedSHA returns a sha256 stated in X-Linked-Etag (Hugging Face's LFS
// object hash), if any.
func linkedSHA(h http.Header) string {
	s := strings.Trim(strings.TrimPrefix(h.Get("X-Linked-Etag"), "W/"), `"`)
	if len(s) != 64 {
		return ""
	}
	if _, err := hex.DecodeString(s); err != nil {
		return ""
	}
	return strings.ToLower(s)
}

// ErrChecksum is returned when a download's sha256 is not the expected one.
var ErrChecksum = errors.New("sha256 mismatch")

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

type progressReader struct {
	r           io.Reader
	done, total int64
	fn          PullProgress
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.done += int64(n)
	if p.fn != nil {
		p.fn(p.done, p.total)
	}
	return n, err
}
