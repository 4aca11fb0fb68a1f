package gateway

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agoranet/agora/gateway/chatui"
	"github.com/agoranet/agora/internal/testkit"
	"github.com/agoranet/agora/route"
)

// TestChatPageServed: /chat is the page, under a CSP that allows no inline
// or third-party code; its assets load with their types; what does not
// exist is a 404, not the page.
func TestChatPageServed(t *testing.T) {
	srv := gatewayFor(t)
	for _, tc := range []struct {
		path, wantType, wantBody string
		wantCode                 int
	}{
		{"/chat", "text/html", `src="/chat/chat.js"`, 200},
		{"/chat/", "text/html", `<title>Agora chat</title>`, 200},
		{"/chat/chat.js", "text/javascript", "verifyReceipt", 200},
		{"/chat/chat.css", "text/css", "prefers-color-scheme", 200},
		{"/chat/hpke.js", "text/javascript", "SetupBaseS", 200},
		{"/chat/receipt.js", "text/javascript", "agora/wire-receipt/v1", 200},
		{"/chat/markdown.js", "text/javascript", "escapeHTML", 200},
		{"/chat/nope.js", "", "", 404},
		{"/chat/../gateway.go", "", "", 404},
		{"/chatty", "", "", 404},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp, err := srv.Client().Get(srv.URL + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantCode {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.wantCode)
			}
			if tc.wantCode != 200 {
				return
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tc.wantType) {
				t.Errorf("Content-Type %q, want %s", ct, tc.wantType)
			}
			if got := resp.Header.Get("Content-Security-Policy"); got != chatui.CSP {
				t.Errorf("CSP %q, want %q", got, chatui.CSP)
			}
			for _, must := range []string{"script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "default-src 'self'"} {
				if !strings.Contains(resp.Header.Get("Content-Security-Policy"), must) {
					t.Errorf("CSP lacks %s", must)
				}
			}
			if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Error("no nosniff")
			}
			if !strings.Contains(string(body), tc.wantBody) {
				t.Errorf("body lacks %q", tc.wantBody)
			}
		})
	}
}

// TestChatPageHasNoInlineCode: the CSP forbids inline scripts and styles,
// so the page must have none (they would silently not run).
func TestChatPageHasNoInlineCode(t *testing.T) {
	srv := gatewayFor(t)
	resp, err := srv.Client().Get(srv.URL + "/chat")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	page := string(body)
	for _, bad := range []string{"<style", " style=", " onclick=", " onload=", "<script>", `src="http`, `href="http`, `url(http`} {
		if strings.Contains(page, bad) {
			t.Errorf("the page contains %q", bad)
		}
	}
}

// TestAgoraInfo: GET /v1/agora/info reports the configured chain, subnet,
// model and explorer; a paid gateway's payments fill in chain and subnet.
func TestAgoraInfo(t *testing.T) {
	gk, _ := testkit.Key(99)
	none := func(context.Context) ([]route.Candidate, error) { return nil, nil }
	for _, tc := range []struct {
		name string
		cfg  Config
		want Info
	}{
		{"configured", Config{Key: gk, Candidates: none, Model: "m1", ChainID: "agora-x", Netuid: 3, ExplorerURL: "http://127.0.0.1:9/"},
			Info{ChainID: "agora-x", Netuid: 3, Model: "m1", Explorer: "http://127.0.0.1:9/"}},
		{"from payments", Config{Key: gk, Candidates: none, Model: "m2", Payments: &Payments{ChainID: "agora-p", Netuid: 7}},
			Info{ChainID: "agora-p", Netuid: 7, Model: "m2"}},
		{"config wins", Config{Key: gk, Candidates: none, Model: "m3", ChainID: "agora-c", Netuid: 2, Payments: &Payments{ChainID: "agora-p", Netuid: 7}},
			Info{ChainID: "agora-c", Netuid: 2, Model: "m3"}},
		{"empty", Config{Key: gk, Candidates: none}, Info{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(New(tc.cfg).Handler())
			defer srv.Close()
			resp, err := srv.Client().Get(srv.URL + "/v1/agora/info")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
				t.Fatalf("status %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			var raw map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"chain_id", "netuid", "model", "explorer"} {
				if _, ok := raw[k]; !ok {
					t.Errorf("no %q in %v", k, raw)
				}
			}
			got := Info{ChainID: raw["chain_id"].(string), Netuid: uint32(raw["netuid"].(float64)), Model: raw["model"].(string), Explorer: raw["explorer"].(string)}
			if got != tc.want {
				t.Fatalf("info %+v, want %+v", got, tc.want)
			}
		})
	}
}
