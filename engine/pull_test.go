package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPullResumesAndVerifies(t *testing.T) {
	body := bytes.Repeat([]byte("gguf-bytes-"), 10_000)
	sum := sha256.Sum256(body)
	want := hex.EncodeToString(sum[:])
	var ranges []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ranges = append(ranges, r.Header.Get("Range"))
		w.Header().Set("X-Linked-Etag", `"`+want+`"`)
		http.ServeContent(w, r, "m.gguf", time.Time{}, bytes.NewReader(body))
	}))
	defer srv.Close()
	dir := t.TempDir()
	// A previous, interrupted download left the first 1000 bytes.
	os.WriteFile(filepath.Join(dir, "m.gguf.partial"), body[:1000], 0o644)
	var last int64
	path, err := Pull(context.Background(), srv.Client(), srv.URL+"/m.gguf", dir, "", func(done, total int64) { last = done })
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if !bytes.Equal(got, body) || last != int64(len(body)) {
		t.Fatalf("downloaded %d bytes (progress %d), want %d", len(got), last, len(body))
	}
	if len(ranges) != 1 || ranges[0] != "bytes=1000-" {
		t.Fatalf("range requests %v", ranges)
	}
	// A wrong expected hash is refused and leaves nothing behind.
	dir2 := t.TempDir()
	_, err = Pull(context.Background(), srv.Client(), srv.URL+"/m.gguf", dir2, strings.Repeat("0", 64), nil)
	if !errors.Is(err, ErrChecksum) {
		t.Fatalf("bad hash err %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir2, "m.gguf")); err == nil {
		t.Fatal("file kept after a checksum failure")
	}
	// Offline: a clear error.
	srv.Close()
	if _, err := Pull(context.Background(), http.DefaultClient, srv.URL+"/x.gguf", t.TempDir(), "", nil); err == nil || !strings.Contains(err.Error(), "no network") {
		t.Fatalf("offline err %v", err)
	}
}
