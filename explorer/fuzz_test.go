package explorer

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/agoranet/agora/client"
)

// FuzzRequest sends arbitrary paths and queries (the explorer's only
// outside input) through the whole handler, over a node that refuses every
// connection: parsing must answer 400/404, or the node's absence 502, and
// never panic or answer 500.
func FuzzRequest(f *testing.F) {
	for _, s := range []string{
		"/", "/api/status", "/blocks?before=x", "/blocks/-1", "/blocks/99999999999999999999",
		"/txs/zz", "/txs/" + strings.Repeat("AB", 32), "/accounts/agora1xyz", "/search?q=%00",
		"/search?q=subnet%2099999999999", "/subnets/1?sort=%27&page=-3", "/subnets/4294967296/neurons/70000",
		"/api/subnets/1/keys", "/channels/18446744073709551616", "/static/../explorer.go", "/api/nothing",
		"/models/zz", "/models/" + strings.Repeat("ab", 32) + "?holder=agora1xyz", "/api/datasets/" + strings.Repeat("AB", 32), "/datasets/%00",
	} {
		f.Add(s)
	}
	c, err := client.New("http://127.0.0.1:1")
	if err != nil {
		f.Fatal(err)
	}
	e, err := New(Config{Chain: c})
	if err != nil {
		f.Fatal(err)
	}
	h := e.Handler()
	f.Fuzz(func(t *testing.T, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil || !strings.HasPrefix(u.Path, "/") {
			return
		}
		req, err := http.NewRequest(http.MethodGet, "http://explorer.test"+u.RequestURI(), nil)
		if err != nil {
			return // not a request a client could send
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code >= 500 && w.Code != http.StatusBadGateway {
			t.Fatalf("GET %s answered %d: %s", target, w.Code, w.Body.String())
		}
	})
}
