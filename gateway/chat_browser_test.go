package gateway_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain"
	"github.com/agoranet/agora/devnet"
	"github.com/agoranet/agora/e2e"
	"github.com/agoranet/agora/explorer"
	"github.com/agoranet/agora/gateway"
	"github.com/agoranet/agora/internal/browser"
	"github.com/agoranet/agora/internal/testkit"
	"github.com/agoranet/agora/keys"
	"github.com/agoranet/agora/miner"
	"github.com/agoranet/agora/route"
	"github.com/agoranet/agora/wire"
)

// recorder sits in front of a gateway: it keeps every completion request
// body exactly as it went through, and can tamper with the receipt event
// on its way back to the browser.
type recorder struct {
	mu     sync.Mutex
	bodies [][]byte
	tamper atomic.Bool
}

func (rec *recorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/chat/completions" {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			rec.mu.Lock()
			rec.bodies = append(rec.bodies, body)
			rec.mu.Unlock()
			r.Body = io.NopCloser(bytes.NewReader(body))
			if rec.tamper.Load() {
				w = &tamperWriter{ResponseWriter: w}
			}
		}
		h.ServeHTTP(w, r)
	})
}

func (rec *recorder) last() []byte {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.bodies) == 0 {
		return nil
	}
	return rec.bodies[len(rec.bodies)-1]
}

// tamperWriter changes the receipt's duration (one digit more), which its
// signature covers.
type tamperWriter struct{ http.ResponseWriter }

func (t *tamperWriter) Write(b []byte) (int, error) {
	out := b
	if bytes.Contains(b, []byte("event: "+wire.ReceiptEvent)) {
		out = bytes.Replace(b, []byte(`"duration_ms":`), []byte(`"duration_ms":1`), 1)
	}
	if _, err := t.ResponseWriter.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (t *tamperWriter) Flush() {
	if f, ok := t.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// serve runs h on loopback for the test and returns its base URL.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	l := testkit.Listen(t)
	srv := &http.Server{Handler: h}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "http://" + l.Addr().String()
}

// keysFile is the explorer's GET /api/subnets/{netuid}/keys.
type keysFile struct {
	Netuid uint32    `json:"netuid"`
	Height int64     `json:"height"`
	Keys   []keyInfo `json:"keys"`
}

type keyInfo struct {
	UID    int    `json:"uid"`
	Hotkey string `json:"hotkey"`
	X25519 string `json:"x25519"`
}

func keysHandler(get func(ctx context.Context) (keysFile, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		kf, err := get(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(kf)
	})
}

// chatUI drives the page.
type chatUI struct {
	t *testing.T
	b *browser.Browser
}

func openChat(t *testing.T, size browser.Size, pageURL string) *chatUI {
	t.Helper()
	b := browser.New(t, size)
	b.MustDo(30*time.Second, chromedp.Navigate(pageURL))
	b.WaitUntil(10*time.Second, `document.documentElement.dataset.ready === 'true'`)
	return &chatUI{t: t, b: b}
}

// ask sends a message and waits for the answer's receipt line; it returns
// the answer's text and the receipt line.
func (u *chatUI) ask(text string) (answer, line string) {
	u.t.Helper()
	n := browser.Get(u.b, 5*time.Second, chromedp.Evaluate[int](`document.querySelectorAll('.msg.assistant').length`))
	u.b.MustDo(10*time.Second, chromedp.SendKeys("#prompt", text), chromedp.Click("#send"))
	u.b.WaitUntil(90*time.Second, fmt.Sprintf(`(() => { const a = document.querySelectorAll('.msg.assistant'); return a.length === %d && !a[%d].querySelector('.meta.pending'); })()`, n+1, n))
	last := fmt.Sprintf(`document.querySelectorAll('.msg.assistant')[%d]`, n)
	answer = browser.Get(u.b, 5*time.Second, chromedp.Evaluate[string](last+`.querySelector('.body').textContent`))
	line = browser.Get(u.b, 5*time.Second, chromedp.Evaluate[string](last+`.querySelector('.meta').textContent`))
	return answer, line
}

func (u *chatUI) newChat() {
	u.t.Helper()
	u.b.MustDo(5*time.Second, chromedp.Evaluate[chromedp.Void](`document.querySelector('#new-chat').click()`))
	u.b.WaitUntil(5*time.Second, `document.querySelectorAll('.msg').length === 0`)
}

// setMaxTokens sets the answer length in the settings panel.
func (u *chatUI) setMaxTokens(n int) {
	u.t.Helper()
	u.b.MustDo(10*time.Second, chromedp.Click("#settings-btn"), chromedp.SetValue("#set-maxtokens", fmt.Sprint(n)), chromedp.Click("#settings-done"))
	u.b.WaitUntil(5*time.Second, fmt.Sprintf(`JSON.parse(localStorage.getItem('agora.chat.settings')).maxTokens === %d && !document.querySelector('#settings').open`, n))
}

func (u *chatUI) setTheme(theme string) {
	u.t.Helper()
	u.b.MustDo(10*time.Second, chromedp.Click("#settings-btn"), chromedp.SetValue("#set-theme", theme), chromedp.Click("#settings-done"))
	u.b.WaitUntil(5*time.Second, fmt.Sprintf(`document.documentElement.dataset.theme === %q`, theme))
}

func (u *chatUI) setE2E(on bool) {
	u.t.Helper()
	checked := browser.Get(u.b, 5*time.Second, chromedp.Evaluate[bool](`document.querySelector('#e2e').checked`))
	if checked != on {
		u.b.MustDo(5*time.Second, chromedp.Click(".switch"))
	}
	u.b.WaitUntil(5*time.Second, fmt.Sprintf(`document.querySelector('#e2e').checked === %v`, on))
}

func (u *chatUI) lastSealed() bool {
	return browser.Get(u.b, 5*time.Second, chromedp.Evaluate[bool](`(() => { const a = document.querySelectorAll('.msg.assistant'); return a[a.length-1].dataset.sealed === 'true'; })()`))
}

// checkSealed proves the gateway saw only an envelope: no prompt text,
// sealed to the miner that then served it.
func checkSealed(t *testing.T, body []byte, prompt string, servedLine string) {
	t.Helper()
	if bytes.Contains(body, []byte(prompt)) {
		t.Fatalf("the gateway saw the prompt in the clear: %s", body)
	}
	env, err := e2e.Detect(body)
	if err != nil || env == nil {
		t.Fatalf("the request through the gateway is not an envelope (%v): %s", err, body)
	}
	if short := env.Sealed.Miner[:10]; !strings.Contains(servedLine, short) {
		t.Fatalf("sealed to %s but the line says %q", env.Sealed.Miner, servedLine)
	}
}

// TestChatPageFreeGateway runs the page against a free gateway with one
// miner on the built-in engine: the streamed answer, its receipt checked in
// the browser, an answer sealed end to end (with the key from an
// explorer-shaped endpoint on another origin), and a receipt tampered in
// flight shown as a warning.
func TestChatPageFreeGateway(t *testing.T) {
	mk, _ := testkit.Key(7)
	b, err := miner.NewBuiltin(testkit.LoadModel(t, "tiny", 1))
	if err != nil {
		t.Fatal(err)
	}
	m, err := miner.New(miner.Config{Hotkey: mk, Backend: b, MaxConcurrent: 2, MaxQueue: 4})
	if err != nil {
		t.Fatal(err)
	}
	minerURL := serve(t, m.Handler())
	cand := route.Candidate{UID: 0, Hotkey: m.Address(), Endpoint: minerURL, Score: 1}
	gk, _ := testkit.Key(99)
	// The gateway names an explorer of its own that lies about the miner's
	// key (publishing one the gateway holds): the link names the real one,
	// so the page must never ask the liar, and its sealed requests must
	// open at the miner.
	attacker, _ := testkit.Key(66)
	attackerKey, err := e2e.DeriveKey(attacker)
	if err != nil {
		t.Fatal(err)
	}
	var liarAsked atomic.Int64
	liar := keysHandler(func(context.Context) (keysFile, error) {
		liarAsked.Add(1)
		return keysFile{Netuid: 1, Height: 5, Keys: []keyInfo{{UID: 0, Hotkey: m.Address().String(), X25519: hex.EncodeToString(attackerKey.PublicKey())}}}, nil
	})
	g := gateway.New(gateway.Config{Key: gk, Model: "agora-test", Netuid: 1, ChainID: "agora-chat-test", ExplorerURL: serve(t, liar),
		Candidates: func(context.Context) ([]route.Candidate, error) { return []route.Candidate{cand}, nil }})
	var rec recorder
	gw := serve(t, rec.wrap(g.Handler()))
	explorerURL := serve(t, keysHandler(func(context.Context) (keysFile, error) {
		return keysFile{Netuid: 1, Height: 5, Keys: []keyInfo{{UID: 0, Hotkey: m.Address().String(), X25519: hex.EncodeToString(m.E2EPublicKey())}}}, nil
	}))

	u := openChat(t, browser.Desktop, gw+"/chat#key=agora-sk-test&explorer="+url.QueryEscape(explorerURL))
	// The key left the address bar and stayed in the browser.
	if h := browser.Get(u.b, 5*time.Second, chromedp.Evaluate[string](`location.href`)); strings.Contains(h, "agora-sk") || strings.Contains(h, "#") {
		t.Fatalf("the key is still in the address bar: %s", h)
	}
	if k := browser.Get(u.b, 5*time.Second, chromedp.Evaluate[string](`JSON.parse(localStorage.getItem('agora.chat.settings')).key`)); k != "agora-sk-test" {
		t.Fatalf("stored key %q", k)
	}

	answer, line := u.ask("hello there")
	if answer == "" || !strings.Contains(line, "receipt verified") || !strings.Contains(line, m.Address().String()[:10]) {
		t.Fatalf("plain answer %q, line %q", answer, line)
	}
	if u.lastSealed() || !bytes.Contains(rec.last(), []byte("hello there")) {
		t.Fatalf("a plain request should be plain: %s", rec.last())
	}

	u.setE2E(true)
	answer, line = u.ask("a secret question")
	if answer == "" || !strings.Contains(line, "receipt verified") || !strings.Contains(line, "end-to-end") || !u.lastSealed() {
		t.Fatalf("sealed answer %q, line %q, sealed %v", answer, line, u.lastSealed())
	}
	checkSealed(t, rec.last(), "a secret question", line)
	if n := liarAsked.Load(); n != 0 {
		t.Fatalf("the page asked the gateway's explorer for keys %d times though the link named one", n)
	}

	// Kept across a reload, in the browser only.
	u.b.MustDo(30*time.Second, chromedp.Reload())
	u.b.WaitUntil(10*time.Second, `document.querySelectorAll('.msg.assistant .receipt.ok').length === 2`)

	rec.tamper.Store(true)
	u.setE2E(false)
	u.newChat()
	_, line = u.ask("tamper with this one")
	rec.tamper.Store(false)
	if !strings.Contains(line, "NOT verified") || !strings.Contains(line, "signature does not verify") {
		t.Fatalf("a tampered receipt shows %q", line)
	}
	if n := browser.Get(u.b, 5*time.Second, chromedp.Evaluate[int](`document.querySelectorAll('.msg.assistant .receipt.warn').length`)); n != 1 {
		t.Fatalf("%d warnings shown, want 1", n)
	}
	u.b.Screenshot("chat-tampered")
	u.b.NoProblems()
}

// TestChatPageStreamFailure: a miner that stops part-way leaves what
// arrived on screen, with the gateway's error and no verified receipt; and
// the stop button ends a stream that is still arriving.
func TestChatPageStreamFailure(t *testing.T) {
	_, maddr := testkit.Key(8)
	minerURL := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, `data: {"choices":[{"index":0,"delta":{"role":"assistant","content":"half an answer"}}]}`+"\n\n")
		if bytes.Contains(body, []byte("slowly")) {
			// Hold the stream open until the browser walks away.
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}
	}))
	gk, _ := testkit.Key(99)
	g := gateway.New(gateway.Config{Key: gk, Model: "agora-test", Candidates: func(context.Context) ([]route.Candidate, error) {
		return []route.Candidate{{Hotkey: maddr, Endpoint: minerURL, Score: 1}}, nil
	}})
	u := openChat(t, browser.Phone, serve(t, g.Handler())+"/chat#key=agora-sk-test")
	answer, line := u.ask("hello")
	if answer != "half an answer" || !strings.Contains(line, "the miner failed during the stream") || !strings.Contains(line, "NOT verified") || strings.Contains(line, "✓") {
		t.Fatalf("answer %q, line %q", answer, line)
	}
	u.b.Screenshot("chat-failed")

	// Stop: the button aborts a stream still arriving.
	u.newChat()
	u.b.MustDo(10*time.Second, chromedp.SendKeys("#prompt", "answer slowly"), chromedp.Click("#send"))
	u.b.WaitUntil(30*time.Second, `document.querySelector('#send').dataset.state === 'stop' && document.querySelector('.msg.assistant .body').textContent === 'half an answer'`)
	u.b.MustDo(10*time.Second, chromedp.Click("#send"))
	u.b.WaitUntil(10*time.Second, `document.querySelector('#send').dataset.state === 'send' && !document.querySelector('.msg.assistant .meta.pending')`)
	if line := u.b.Text(5*time.Second, ".msg.assistant .meta"); !strings.Contains(line, "stopped") || !strings.Contains(line, "NOT verified") {
		t.Fatalf("a stopped answer shows %q", line)
	}
	u.b.NoProblems()
}

// TestChatReceiptChecks runs the page's receipt check on receipts Go signs,
// and on each of them altered: only the genuine one verifies, and each
// alteration gets the reason wire.Receipt.Verify would give.
func TestChatReceiptChecks(t *testing.T) {
	gk, _ := testkit.Key(99)
	g := gateway.New(gateway.Config{Key: gk, Candidates: func(context.Context) ([]route.Candidate, error) { return nil, nil }})
	gw := serve(t, g.Handler())
	u := openChat(t, browser.Phone, gw+"/chat")
	// No key yet: the page asks for one, right where the chat would be.
	if !browser.Get(u.b, 5*time.Second, chromedp.Evaluate[bool](`!document.querySelector('#key-card').hidden && !document.querySelector('#welcome').hidden`)) {
		t.Fatal("without a key the page does not ask for one")
	}
	u.b.Screenshot("chat-welcome")

	mk, maddr := testkit.Key(5)
	_, other := testkit.Key(6)
	request := []byte(`{"model":"agora","messages":[{"role":"user","content":"hi"}],"stream":true}`)
	var h wire.StreamHasher
	h.Add([]byte(`{"choices":[]}`))
	h.Add([]byte("[DONE]"))
	good := wire.Receipt{RequestHash: wire.Hash(request), ResponseHash: h.Sum(), ModelID: "tiny", PromptTokens: 3, CompletionTokens: 9,
		TTFTMillis: 4, DurationMillis: 50, Price: 18446744073709551615}
	wire.SignReceipt(mk, &good)
	for _, tc := range []struct {
		name   string
		change func(r *wire.Receipt)
		miner  address.Address
		hash   string
		reason string // "" verifies
	}{
		{"genuine", func(*wire.Receipt) {}, maddr, h.Sum(), ""},
		{"price changed", func(r *wire.Receipt) { r.Price-- }, maddr, h.Sum(), "signature does not verify"},
		{"tokens changed", func(r *wire.Receipt) { r.CompletionTokens++ }, maddr, h.Sum(), "signature does not verify"},
		{"signature flipped", func(r *wire.Receipt) { r.Signature = "00" + r.Signature[2:] }, maddr, h.Sum(), "signature does not verify"},
		{"another miner named", func(*wire.Receipt) {}, other, h.Sum(), "but the gateway named"},
		{"another response", func(*wire.Receipt) {}, maddr, wire.Hash([]byte("x")), "covers another response"},
		{"another request", func(r *wire.Receipt) {
			r.RequestHash = wire.Hash([]byte("other"))
			wire.SignReceipt(mk, r)
		}, maddr, h.Sum(), "covers another request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := good
			tc.change(&r)
			raw, _ := json.Marshal(r)
			js := fmt.Sprintf(`(async () => {
				const m = await import('/chat/receipt.js');
				const v = await m.verifyReceipt(m.parseReceipt(%q), %q, new TextEncoder().encode(%q), %q);
				const d = m.describe({verify: v, miner: %q, charged: '123000', tokens: 9});
				return JSON.stringify({ok: v.ok, reason: v.reason || '', cls: d.cls, text: d.text});
			})()`, raw, tc.miner.String(), request, tc.hash, tc.miner.String())
			out := browser.Get(u.b, 10*time.Second, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
			var got struct {
				OK                bool
				Reason, Cls, Text string
			}
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("%s: %v", out, err)
			}
			if tc.reason == "" {
				if !got.OK || got.Cls != "ok" || !strings.Contains(got.Text, "✓ receipt verified") || !strings.Contains(got.Text, "cost 0.000123 AGR") {
					t.Fatalf("genuine receipt: %+v", got)
				}
				return
			}
			if got.OK || got.Cls != "warn" || !strings.Contains(got.Reason, tc.reason) || !strings.Contains(got.Text, tc.reason) {
				t.Fatalf("got %+v, want a warning saying %q", got, tc.reason)
			}
		})
	}
	u.b.NoProblems()
}

// TestChatMarkdown: the renderer formats what models write and never lets
// their text become markup: every case is rendered into the page and
// checked for what it must and must not contain.
func TestChatMarkdown(t *testing.T) {
	gk, _ := testkit.Key(99)
	g := gateway.New(gateway.Config{Key: gk, Candidates: func(context.Context) ([]route.Candidate, error) { return nil, nil }})
	u := openChat(t, browser.Desktop, serve(t, g.Handler())+"/chat")
	for _, tc := range []struct {
		name, in, want string
	}{
		{"script", "<script>alert(1)</script>", "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"},
		{"img onerror", `<img src=x onerror="alert(1)">`, "<p>&lt;img src=x onerror=&quot;alert(1)&quot;&gt;</p>"},
		{"bold italic", "**bold** and *it* and `co*de*`", "<p><strong>bold</strong> and <em>it</em> and <code>co*de*</code></p>"},
		{"fence", "```js\n<b>x</b>\n```", `<pre data-lang="js"><code>&lt;b&gt;x&lt;/b&gt;</code></pre>`},
		{"unclosed fence", "```\nstill coming", "<pre><code>still coming</code></pre>"},
		{"list", "- a\n- b\n\n1. c", "<ul><li>a</li><li>b</li></ul><ol><li>c</li></ol>"},
		{"link", "[docs](https://example.com/a?b=1&c=2)", `<p><a href="https://example.com/a?b=1&amp;c=2" target="_blank" rel="noopener noreferrer nofollow">docs</a></p>`},
		{"javascript link", "[x](javascript:alert(1))", "<p>[x](javascript:alert(1))</p>"},
		{"quote in url", `[x](https://e.com/"onmouseover="alert(1))`, `<p><a href="https://e.com/&quot;onmouseover=&quot;alert(1" target="_blank" rel="noopener noreferrer nofollow">x</a>)</p>`},
		{"paragraphs", "one\ntwo\n\nthree", "<p>one<br>two</p><p>three</p>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			js := fmt.Sprintf(`(async () => {
				const m = await import('/chat/markdown.js');
				const html = m.render(%q);
				const div = document.createElement('div');
				div.innerHTML = html;
				const bad = div.querySelectorAll('script,img,iframe,style,[onerror],[onclick],[onmouseover],[style],a:not([href^="http"])').length;
				return JSON.stringify({html, bad});
			})()`, tc.in)
			out := browser.Get(u.b, 10*time.Second, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
			var got struct {
				HTML string
				Bad  int
			}
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("%s: %v", out, err)
			}
			if got.Bad != 0 || got.HTML != tc.want {
				t.Fatalf("render(%q) = %s (%d unsafe elements), want %s", tc.in, got.HTML, got.Bad, tc.want)
			}
		})
	}
	u.b.NoProblems()
}

// TestChatPageDevnet is the scenario on a whole in-process devnet:
// open the link the devnet prints (its session key in the fragment), talk
// to the subnet's model paying per request, then sealed end to end with the
// miner's key read from the chain, on a laptop and on a phone.
func TestChatPageDevnet(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a network for about a minute")
	}
	home := t.TempDir()
	faucet, faucetAddr := testkit.Key(42)
	gen := chain.Genesis{Params: chain.DefaultParams(250), Devnet: true,
		Accounts: []chain.GenesisAccount{{Address: faucetAddr, Balance: 1_000_000 * agr.Unit}}}
	ch := testkit.StartChain(t, testkit.NodeOptions{ChainID: "agora-chat-test", Genesis: gen, BlockTime: 250 * time.Millisecond})
	c := ch.Client
	ctx, cancel := context.WithTimeout(context.Background(), 240*time.Second)
	defer cancel()
	ks, err := keys.Open(filepath.Join(home, "keys"), keys.WithScryptN(1<<10))
	if err != nil {
		t.Fatal(err)
	}
	net, err := devnet.Start(ctx, devnet.Options{Chain: c, Faucet: faucet, Keystore: ks, Password: []byte("pw"),
		Model: testkit.LoadModel(t, "tiny", 1), Miners: 2, Tempo: 10, Interval: time.Second,
		GatewayAddr: "127.0.0.1:0", LedgerPath: filepath.Join(home, "gateway-ledger.jsonl")})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Stop()

	// The miners' keys come from the chain, through an explorer on another
	// origin, never from the gateway.
	ex, err := explorer.New(explorer.Config{Chain: c})
	if err != nil {
		t.Fatal(err)
	}
	keysAPI := ex.Handler()
	explorerURL := serve(t, keysAPI)

	// Everything the browser sends the gateway goes through the recorder.
	base, _ := url.Parse(strings.TrimSuffix(net.GatewayURL, "/v1"))
	proxy := httputil.NewSingleHostReverseProxy(base)
	proxy.FlushInterval = -1
	var rec recorder
	gw := serve(t, rec.wrap(proxy))
	link := gw + "/chat#key=" + net.SessionToken + "&explorer=" + url.QueryEscape(explorerURL)

	for _, tc := range []struct {
		name string
		size browser.Size
		shot string
	}{
		{"desktop", browser.Desktop, "chat-plain"},
		{"phone", browser.Phone, "chat-phone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := openChat(t, tc.size, link)
			u.setMaxTokens(48)
			answer, line := u.ask("Hello! What can you do?")
			if answer == "" || !strings.Contains(line, "receipt verified") || !strings.Contains(line, "cost ") || strings.Contains(line, "cost 0 AGR") {
				t.Fatalf("paid answer %q, line %q", answer, line)
			}
			u.b.Screenshot(tc.shot)
			u.setE2E(true)
			u.newChat()
			answer, line = u.ask("Tell me a secret about the sea")
			if answer == "" || !strings.Contains(line, "receipt verified") || !strings.Contains(line, "end-to-end") || !u.lastSealed() || strings.Contains(line, "cost 0 AGR") {
				t.Fatalf("sealed answer %q, line %q", answer, line)
			}
			checkSealed(t, rec.last(), "secret about the sea", line)
			if tc.name == "desktop" {
				u.b.Screenshot("chat-e2e")
				u.b.MustDo(5*time.Second, chromedp.Click("#settings-btn"))
				u.b.WaitUntil(5*time.Second, `document.querySelector('#settings').open`)
				if v := browser.Get(u.b, 5*time.Second, chromedp.Evaluate[string](`document.querySelector('#set-key').type`)); v != "password" {
					t.Fatalf("the key field is %q, not masked", v)
				}
				u.b.Screenshot("chat-settings")
				u.b.MustDo(5*time.Second, chromedp.Click("#settings-done"))
			} else {
				u.b.Screenshot("chat-phone-e2e")
				// The conversation list slides over on a phone.
				u.b.MustDo(5*time.Second, chromedp.Click("#menu-btn"))
				u.b.WaitUntil(5*time.Second, `document.querySelector('#sidebar').getBoundingClientRect().left >= 0`)
				u.b.Screenshot("chat-phone-menu")
				u.b.MustDo(5*time.Second, chromedp.Click("#close-sidebar"))
				u.setTheme("dark")
				u.b.Screenshot("chat-phone-dark")
			}
			u.b.NoProblems()
		})
	}
}
