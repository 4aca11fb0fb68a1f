package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
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

// Pull downloads url into dir, resuming a previous .partial file with an HTTP
// Range request, and verifies the file's sha256 against wantSHA, else against
// the sha256 the server states (Hugging Face's X-Linked-Etag), else reports
// the hash it computed. It returns the final path.
func Pull(ctx context.Context, client *http.Client, url, dir, wantSHA string, progress PullProgress) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	name := filepath.Base(strings.SplitN(url, "?", 2)[0])
	if name == "" || name == "." || name == "/" {
		return "", fmt.Errorf("cannot name a file from %q", url)
	}
	final := filepath.Join(dir, name)
	partial := final + ".partial"
	if _, err := os.Stat(final); err == nil {
		return final, verify(final, wantSHA)
	}
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
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("download %s: %w (no network? use --model FILE.gguf or 'agora model gen')", url, err)
	}
	defer resp.Body.Close()
	flags := os.O_CREATE | os.O_WRONLY
	switch {
	case resp.StatusCode == http.StatusPartialContent && have > 0:
		flags |= os.O_APPEND
	case resp.StatusCode == http.StatusOK:
		flags |= os.O_TRUNC
		have = 0
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		// The partial file is already complete.
	default:
		return "", fmt.Errorf("download %s: HTTP %s", url, resp.Status)
	}
	if wantSHA == "" {
		wantSHA = strings.Trim(resp.Header.Get("X-Linked-Etag"), `"`)
		if len(wantSHA) != 64 {
			wantSHA = ""
		}
	}
	f, err := os.OpenFile(partial, flags, 0o644)
	if err != nil {
		return "", err
	}
	total := int64(-1)
	if resp.ContentLength >= 0 {
		total = have + resp.ContentLength
	}
	if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		_, err = io.Copy(f, &progressReader{r: resp.Body, done: have, total: total, fn: progress})
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("download %s: %w (run again to resume)", url, err)
	}
	if err := verify(partial, wantSHA); err != nil {
		os.Remove(partial)
		return "", err
	}
	return final, os.Rename(partial, final)
}

// ErrChecksum is returned when a download's sha256 is not the expected one.
var ErrChecksum = errors.New("sha256 mismatch")

func verify(path, want string) error {
	if want == "" {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); !strings.EqualFold(got, want) {
		return fmt.Errorf("%w: %s has %s, want %s", ErrChecksum, filepath.Base(path), got, want)
	}
	return nil
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
