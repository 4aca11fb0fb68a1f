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
	"sync"
	"testing"
	"time"
)

func TestPull(t *testing.T) {
	body := bytes.Repeat([]byte("gguf-bytes-"), 10_000)
	sum := sha256.Sum256(body)
	want := hex.EncodeToString(sum[:])
	var mu sync.Mutex
	var ranges []string
	ignoreRange := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Like Hugging Face: /resolve/ redirects to the CDN and states the
		// LFS sha256 on the redirect only.
		if strings.HasPrefix(r.URL.Path, "/resolve/") {
			w.Header().Set("X-Linked-Etag", `"`+want+`"`)
			http.Redirect(w, r, "/cdn/"+strings.TrimPrefix(r.URL.Path, "/resolve/"), http.StatusFound)
			return
		}
		mu.Lock()
		ranges = append(ranges, r.Header.Get("Range"))
		ign := ignoreRange
		mu.Unlock()
		if ign {
			w.Write(body)
			return
		}
		http.ServeContent(w, r, "m.gguf", time.Time{}, bytes.NewReader(body))
	}))
	defer srv.Close()
	ctx := context.Background()
	check := func(t *testing.T, p Pulled, err error, verified string) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(p.Path)
		if !bytes.Equal(got, body) || p.SHA256 != want || p.Verified != verified {
			t.Fatalf("pulled %d bytes, %+v", len(got), p)
		}
		if id, _ := FileID(p.Path); id != want {
			t.Fatalf("file id %s", id)
		}
	}
	reset := func(ign bool) {
		mu.Lock()
		ranges, ignoreRange = nil, ign
		mu.Unlock()
	}

	t.Run("resume", func(t *testing.T) {
		reset(false)
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "m.gguf.partial"), body[:1000], 0o644)
		var last int64
		p, err := Pull(ctx, srv.Client(), srv.URL+"/resolve/m.gguf", dir, "", func(done, total int64) { last = done })
		check(t, p, err, "server sha256")
		if last != int64(len(body)) || len(ranges) != 1 || ranges[0] != "bytes=1000-" {
			t.Fatalf("progress %d, ranges %v", last, ranges)
		}
		// A second pull reuses the file.
		p, err = Pull(ctx, srv.Client(), srv.URL+"/resolve/m.gguf", dir, want, nil)
		check(t, p, err, "expected sha256")
		if len(ranges) != 1 {
			t.Fatalf("file downloaded again: %v", ranges)
		}
	})
	t.Run("server ignores range", func(t *testing.T) {
		reset(true)
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "m.gguf.partial"), []byte("garbage"), 0o644)
		p, err := Pull(ctx, srv.Client(), srv.URL+"/cdn/m.gguf", dir, want, nil)
		check(t, p, err, "expected sha256")
	})
	t.Run("partial longer than the file", func(t *testing.T) {
		reset(false)
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "m.gguf.partial"), append(bytes.Clone(body), "extra"...), 0o644)
		p, err := Pull(ctx, srv.Client(), srv.URL+"/cdn/m.gguf", dir, "", nil)
		check(t, p, err, "")
		if len(ranges) != 2 || ranges[1] != "" {
			t.Fatalf("ranges %v", ranges)
		}
	})
	t.Run("checksum mismatch", func(t *testing.T) {
		reset(false)
		dir := t.TempDir()
		_, err := Pull(ctx, srv.Client(), srv.URL+"/resolve/m.gguf", dir, strings.Repeat("0", 64), nil)
		if !errors.Is(err, ErrChecksum) {
			t.Fatalf("err %v", err)
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 0 {
			t.Fatalf("left behind %v", entries)
		}
	})
	t.Run("offline", func(t *testing.T) {
		dead := httptest.NewServer(http.NotFoundHandler())
		dead.Close()
		_, err := Pull(ctx, http.DefaultClient, dead.URL+"/x.gguf", t.TempDir(), "", nil)
		if err == nil || !strings.Contains(err.Error(), "offline?") || strings.Contains(err.Error(), "\n") {
			t.Fatalf("offline err %v", err)
		}
	})
	t.Run("bad urls", func(t *testing.T) {
		for _, u := range []string{srv.URL + "/resolve/", "ftp://x/m.gguf", "::"} {
			if _, err := Pull(ctx, srv.Client(), u, t.TempDir(), "", nil); err == nil {
				t.Errorf("%q accepted", u)
			}
		}
		missing := httptest.NewServer(http.NotFoundHandler())
		defer missing.Close()
		if _, err := Pull(ctx, missing.Client(), missing.URL+"/m.gguf", t.TempDir(), "", nil); err == nil || !strings.Contains(err.Error(), "404") {
			t.Errorf("404: %v", err)
		}
	})
}
