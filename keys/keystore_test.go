package keys

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/agoranet/agora/address"
)

// testScryptN keeps tests fast; the format and code paths are the same as
// with the default cost.
const testScryptN = 1 << 10

func testStore(t testing.TB) *Keystore {
	t.Helper()
	ks, err := Open(filepath.Join(t.TempDir(), "keys"), WithScryptN(testScryptN))
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func TestKeystoreRoundTrip(t *testing.T) {
	ks := testStore(t)
	pw := []byte("correct horse battery staple")
	info, mnemonic, err := ks.Create("alice", Coldkey, pw)
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "alice" || info.Kind != Coldkey || info.CreatedAt.IsZero() {
		t.Fatalf("info %+v", info)
	}
	if len(strings.Fields(mnemonic)) != MnemonicWords {
		t.Fatalf("mnemonic has %d words", len(strings.Fields(mnemonic)))
	}
	want, err := PrivKeyFromMnemonic(mnemonic, "")
	if err != nil {
		t.Fatal(err)
	}
	wantPub := want.Public().(ed25519.PublicKey)
	if !bytes.Equal(info.PubKey, wantPub) || info.Address != address.FromPubKey(wantPub) {
		t.Fatal("info does not describe the mnemonic's key")
	}
	if !strings.HasPrefix(info.Address.String(), address.HRP+"1") {
		t.Fatalf("address %s", info.Address)
	}

	got, err := ks.Get("alice")
	if err != nil || got.Address != info.Address || got.Kind != info.Kind || !got.CreatedAt.Equal(info.CreatedAt) {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	priv, err := ks.Unlock("alice", pw)
	if err != nil || !priv.Equal(want) {
		t.Fatalf("Unlock: %v", err)
	}
	exported, err := ks.Export("alice", pw)
	if err != nil || exported != mnemonic {
		t.Fatalf("Export = %q, %v", exported, err)
	}

	// The same mnemonic, typed messily, imports under another name and kind
	// to the same address.
	messy := "  " + strings.ToUpper(strings.ReplaceAll(mnemonic, " ", "\n ")) + "\n"
	imp, err := ks.Import("alice-hot", Hotkey, messy, []byte("another password"))
	if err != nil || imp.Address != info.Address || imp.Kind != Hotkey {
		t.Fatalf("Import = %+v, %v", imp, err)
	}
	if m, err := ks.Export("alice-hot", []byte("another password")); err != nil || m != mnemonic {
		t.Fatalf("imported mnemonic not stored canonically: %q %v", m, err)
	}

	// Info JSON carries the public key as hex and the address as bech32.
	raw, _ := json.Marshal(info)
	var back map[string]any
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if back["pubkey"] != info.PubKey.String() || back["address"] != info.Address.String() || back["kind"] != "coldkey" {
		t.Fatalf("info JSON %s", raw)
	}
	var decoded Info
	if err := json.Unmarshal(raw, &decoded); err != nil || !bytes.Equal(decoded.PubKey, info.PubKey) {
		t.Fatalf("info JSON round trip: %v", err)
	}
}

func TestWrongPassword(t *testing.T) {
	ks := testStore(t)
	if _, _, err := ks.Create("bob", Hotkey, []byte("right")); err != nil {
		t.Fatal(err)
	}
	for _, pw := range []string{"wrong", "", "right ", "Right"} {
		if _, err := ks.Unlock("bob", []byte(pw)); !errors.Is(err, ErrWrongPassword) {
			t.Errorf("Unlock(%q) err %v, want ErrWrongPassword", pw, err)
		}
		if _, err := ks.Export("bob", []byte(pw)); !errors.Is(err, ErrWrongPassword) {
			t.Errorf("Export(%q) err %v, want ErrWrongPassword", pw, err)
		}
	}
	// An empty password is allowed by the library (the CLI decides policy).
	if _, _, err := ks.Create("empty", Coldkey, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Unlock("empty", []byte{}); err != nil {
		t.Fatal(err)
	}
}

func TestTamperedFileRejected(t *testing.T) {
	ks := testStore(t)
	pw := []byte("pw")
	if _, _, err := ks.Create("bob", Coldkey, pw); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ks.Create("carol", Coldkey, pw); err != nil {
		t.Fatal(err)
	}
	bobRaw, err := os.ReadFile(ks.path("bob"))
	if err != nil {
		t.Fatal(err)
	}
	carolRaw, _ := os.ReadFile(ks.path("carol"))
	decode := func(raw []byte) map[string]any {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	carol := decode(carolRaw)
	flipHex := func(s string) string {
		if s[0] == '0' {
			return "1" + s[1:]
		}
		return "0" + s[1:]
	}

	cases := []struct {
		name   string
		mutate func(m map[string]any)
		want   error
	}{
		{"kind swapped", func(m map[string]any) { m["kind"] = "hotkey" }, ErrWrongPassword},
		{"identity swapped to another key", func(m map[string]any) {
			m["pubkey"], m["address"] = carol["pubkey"], carol["address"]
		}, ErrWrongPassword},
		{"ciphertext from another key", func(m map[string]any) {
			m["kdf"], m["cipher"] = carol["kdf"], carol["cipher"]
		}, ErrWrongPassword},
		{"ciphertext flipped", func(m map[string]any) {
			c := m["cipher"].(map[string]any)
			c["ciphertext"] = flipHex(c["ciphertext"].(string))
		}, ErrWrongPassword},
		{"nonce flipped", func(m map[string]any) {
			c := m["cipher"].(map[string]any)
			c["nonce"] = flipHex(c["nonce"].(string))
		}, ErrWrongPassword},
		{"salt flipped", func(m map[string]any) {
			k := m["kdf"].(map[string]any)
			k["salt"] = flipHex(k["salt"].(string))
		}, ErrWrongPassword},
		{"scrypt N changed", func(m map[string]any) { m["kdf"].(map[string]any)["n"] = testScryptN * 2 }, ErrWrongPassword},
		{"name edited", func(m map[string]any) { m["name"] = "carol" }, ErrBadFile},
		{"address not of pubkey", func(m map[string]any) { m["address"] = carol["address"] }, ErrBadFile},
		{"pubkey truncated", func(m map[string]any) { m["pubkey"] = m["pubkey"].(string)[:62] }, ErrBadFile},
		{"version bumped", func(m map[string]any) { m["version"] = 2 }, ErrBadFile},
		{"unknown kind", func(m map[string]any) { m["kind"] = "warmkey" }, ErrBadFile},
		{"huge scrypt N", func(m map[string]any) { m["kdf"].(map[string]any)["n"] = 1 << 30 }, ErrBadFile},
		{"huge scrypt p", func(m map[string]any) { m["kdf"].(map[string]any)["p"] = 1 << 20 }, ErrBadFile},
		{"N not a power of two", func(m map[string]any) { m["kdf"].(map[string]any)["n"] = 1000 }, ErrBadFile},
		{"other kdf", func(m map[string]any) { m["kdf"].(map[string]any)["name"] = "pbkdf2" }, ErrBadFile},
		{"other cipher", func(m map[string]any) { m["cipher"].(map[string]any)["name"] = "aes-gcm" }, ErrBadFile},
		{"short nonce", func(m map[string]any) { m["cipher"].(map[string]any)["nonce"] = "00" }, ErrBadFile},
		{"unknown field", func(m map[string]any) { m["extra"] = 1 }, ErrBadFile},
		{"missing cipher", func(m map[string]any) { delete(m, "cipher") }, ErrBadFile},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := decode(bobRaw)
			c.mutate(m)
			out, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(ks.path("bob"), out, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := ks.Unlock("bob", pw); !errors.Is(err, c.want) {
				t.Fatalf("Unlock err %v, want %v", err, c.want)
			}
			if _, err := ks.Export("bob", pw); !errors.Is(err, c.want) {
				t.Fatalf("Export err %v, want %v", err, c.want)
			}
		})
	}

	raw := func(name string, data []byte, want error) {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(ks.path("bob"), data, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := ks.Unlock("bob", pw); !errors.Is(err, want) {
				t.Fatalf("err %v, want %v", err, want)
			}
		})
	}
	raw("trailing data", append(append([]byte{}, bobRaw...), []byte("{}")...), ErrBadFile)
	raw("empty file", nil, ErrBadFile)
	raw("oversized file", bytes.Repeat([]byte(" "), maxKeyFile+1), ErrBadFile)
	// A whole file copied onto another name is refused by name.
	raw("file of another key", carolRaw, ErrBadFile)

	// A header that decrypts fine but holds another key's mnemonic fails the
	// re-derivation check.
	t.Run("mnemonic of another key", func(t *testing.T) {
		kf, err := decodeKeyFile(bobRaw)
		if err != nil {
			t.Fatal(err)
		}
		other, _ := NewMnemonic()
		aead, err := kf.aead(pw)
		if err != nil {
			t.Fatal(err)
		}
		kf.Cipher.Ciphertext = aead.Seal(nil, kf.Cipher.Nonce, []byte(other), kf.aad())
		out, _ := json.Marshal(kf)
		if err := os.WriteFile(ks.path("bob"), out, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := ks.Unlock("bob", pw); !errors.Is(err, ErrBadFile) {
			t.Fatalf("err %v, want ErrBadFile", err)
		}
	})

	// The untouched file still opens: the cases above failed for their edit.
	if err := os.WriteFile(ks.path("bob"), bobRaw, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Unlock("bob", pw); err != nil {
		t.Fatalf("restored file: %v", err)
	}
}

func TestDuplicateName(t *testing.T) {
	ks := testStore(t)
	_, m, err := ks.Create("dup", Coldkey, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(ks.path("dup"))
	if _, _, err := ks.Create("dup", Hotkey, []byte("pw")); !errors.Is(err, ErrExists) {
		t.Fatalf("Create err %v, want ErrExists", err)
	}
	if _, err := ks.Import("dup", Coldkey, m, []byte("other")); !errors.Is(err, ErrExists) {
		t.Fatalf("Import err %v, want ErrExists", err)
	}
	after, _ := os.ReadFile(ks.path("dup"))
	if !bytes.Equal(before, after) {
		t.Fatal("existing key file was modified")
	}

	// Concurrent creates of one name: exactly one wins.
	const n = 4
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { _, _, errs[i] = ks.Create("race", Coldkey, []byte("pw")) })
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, ErrExists):
			t.Fatalf("concurrent create: %v", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d concurrent creates succeeded, want 1", wins)
	}
}

func TestNames(t *testing.T) {
	ks := testStore(t)
	bad := []string{"", ".", "..", ".hidden", "../x", "a/b", `a\b`, "/abs", "sp ace", "tab\t", "nul\x00", "é", strings.Repeat("x", 65)}
	for _, n := range bad {
		if _, _, err := ks.Create(n, Coldkey, []byte("pw")); !errors.Is(err, ErrBadName) {
			t.Errorf("Create(%q) err %v, want ErrBadName", n, err)
		}
		if _, err := ks.Import(n, Coldkey, bip39Vectors[0].mnemonic, []byte("pw")); !errors.Is(err, ErrBadName) {
			t.Errorf("Import(%q) err %v, want ErrBadName", n, err)
		}
		if _, err := ks.Get(n); !errors.Is(err, ErrBadName) {
			t.Errorf("Get(%q) err %v, want ErrBadName", n, err)
		}
		if _, err := ks.Unlock(n, []byte("pw")); !errors.Is(err, ErrBadName) {
			t.Errorf("Unlock(%q) err %v, want ErrBadName", n, err)
		}
		if err := ks.Delete(n); !errors.Is(err, ErrBadName) {
			t.Errorf("Delete(%q) err %v, want ErrBadName", n, err)
		}
	}
	for _, n := range []string{"a", "Z", "0", "a.b", "x_y-z", "key.json", "-dash", strings.Repeat("x", 64)} {
		if err := ValidName(n); err != nil {
			t.Errorf("ValidName(%q): %v", n, err)
		}
	}
	if _, _, err := ks.Create("k", "warmkey", []byte("pw")); !errors.Is(err, ErrBadKind) {
		t.Errorf("bad kind err %v, want ErrBadKind", err)
	}
	for in, want := range map[string]Kind{"coldkey": Coldkey, "HOTKEY": Hotkey, " hotkey ": Hotkey} {
		if k, err := ParseKind(in); err != nil || k != want {
			t.Errorf("ParseKind(%q) = %q, %v", in, k, err)
		}
	}
	for _, in := range []string{"", "cold", "warmkey"} {
		if _, err := ParseKind(in); !errors.Is(err, ErrBadKind) {
			t.Errorf("ParseKind(%q) err %v", in, err)
		}
	}
	// Kinds are stored canonically whatever the caller's case.
	info, _, err := ks.Create("upper", "HOTKEY", []byte("pw"))
	if err != nil || info.Kind != Hotkey {
		t.Fatalf("Create with HOTKEY: %+v %v", info, err)
	}
}

func TestFilePermissionsAndLayout(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "home", "keys")
	ks, err := Open(dir, WithScryptN(testScryptN))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ks.Create("alice", Coldkey, []byte("pw")); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, "alice.json"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v; want 0600", st.Mode(), err)
	}
	st, err = os.Stat(dir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("keystore dir mode %v, %v; want 0700", st.Mode(), err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("keystore holds %d entries (temp files left?)", len(entries))
	}

	// A loose existing directory is tightened.
	loose := filepath.Join(root, "loose")
	if err := os.Mkdir(loose, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(loose, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(loose); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(loose); st.Mode().Perm() != 0o700 {
		t.Fatalf("loose dir left at %v", st.Mode())
	}

	// Bad options and a file in the way are refused.
	for _, n := range []int{0, 1, 3, 1000, 1 << 30} {
		if _, err := Open(filepath.Join(root, "n"), WithScryptN(n)); err == nil {
			t.Errorf("WithScryptN(%d) accepted", n)
		}
	}
	file := filepath.Join(root, "file")
	os.WriteFile(file, nil, 0o600)
	if _, err := Open(file); err == nil {
		t.Error("Open on a regular file succeeded")
	}
}

func TestListAndDelete(t *testing.T) {
	ks := testStore(t)
	list, err := ks.List()
	if err != nil || list == nil || len(list) != 0 {
		t.Fatalf("empty List = %#v, %v", list, err)
	}
	for _, n := range []string{"charlie", "Bravo", "alpha", "alpha.2", "alpha-1"} {
		if _, _, err := ks.Create(n, Hotkey, []byte("pw")); err != nil {
			t.Fatal(err)
		}
	}
	// Files that are not keys are ignored.
	os.WriteFile(filepath.Join(ks.Dir(), "README.txt"), []byte("hi"), 0o600)
	os.WriteFile(filepath.Join(ks.Dir(), tempPrefix+"123"), []byte("junk"), 0o600)
	os.Mkdir(filepath.Join(ks.Dir(), "sub.json"), 0o700)

	list, err = ks.List()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, i := range list {
		names = append(names, i.Name)
	}
	if got, want := strings.Join(names, ","), "Bravo,alpha,alpha-1,alpha.2,charlie"; got != want {
		t.Fatalf("List order %s, want %s", got, want)
	}

	if err := ks.Delete("charlie"); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Get("charlie"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete: %v", err)
	}
	if err := ks.Delete("charlie"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Delete: %v", err)
	}
	for _, op := range []func() error{
		func() error { _, err := ks.Get("nobody"); return err },
		func() error { _, err := ks.Unlock("nobody", []byte("pw")); return err },
		func() error { _, err := ks.Export("nobody", []byte("pw")); return err },
	} {
		if err := op(); !errors.Is(err, ErrNotFound) {
			t.Errorf("missing key: err %v, want ErrNotFound", err)
		}
	}

	// A corrupt file fails the listing by name, and Delete clears it.
	os.WriteFile(ks.path("broken"), []byte("{"), 0o600)
	if _, err := ks.List(); !errors.Is(err, ErrBadFile) || !strings.Contains(err.Error(), `"broken"`) {
		t.Fatalf("List with corrupt file: %v", err)
	}
	if ok, err := ks.Exists("broken"); !ok || err != nil {
		t.Fatalf("Exists(broken) = %v, %v", ok, err)
	}
	if _, _, err := ks.Create("broken", Coldkey, []byte("pw")); !errors.Is(err, ErrExists) {
		t.Fatalf("Create over corrupt file: %v", err)
	}
	if err := ks.Delete("broken"); err != nil {
		t.Fatal(err)
	}
	if list, err := ks.List(); err != nil || len(list) != 4 {
		t.Fatalf("List after cleanup: %d keys, %v", len(list), err)
	}
}

func TestImportBadMnemonic(t *testing.T) {
	ks := testStore(t)
	if _, err := ks.Import("x", Coldkey, strings.Repeat("abandon ", 24), []byte("pw")); !errors.Is(err, ErrBadMnemonic) {
		t.Fatalf("err %v, want ErrBadMnemonic", err)
	}
	if ok, _ := ks.Exists("x"); ok {
		t.Fatal("failed import left a file")
	}
}

// FuzzDecodeKeyFile feeds arbitrary bytes to the key file decoder, and what it
// accepts to decryption: neither may panic, and nothing accepted may carry
// KDF parameters beyond the bounds.
func FuzzDecodeKeyFile(f *testing.F) {
	ks := testStore(f)
	if _, _, err := ks.Create("seed", Coldkey, []byte("pw")); err != nil {
		f.Fatal(err)
	}
	valid, err := os.ReadFile(ks.path("seed"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add(bytes.Replace(valid, []byte(`"n": 1024`), []byte(`"n": 1e9`), 1))
	f.Add(bytes.Replace(valid, []byte(`"version": 1`), []byte(`"version": -1`), 1))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"version":1,"pubkey":null,"kdf":{"salt":"zz"}}`))
	f.Add([]byte("\xff\xfe"))
	f.Fuzz(func(t *testing.T, b []byte) {
		kf, err := decodeKeyFile(b)
		if err != nil {
			if !errors.Is(err, ErrBadFile) {
				t.Fatalf("decode error not ErrBadFile: %v", err)
			}
			return
		}
		if checkScrypt(kf.KDF.N, kf.KDF.R, kf.KDF.P) != nil || 128*kf.KDF.N*kf.KDF.R > maxScryptMem {
			t.Fatalf("accepted unbounded kdf %+v", kf.KDF)
		}
		if len(kf.PubKey) != ed25519.PublicKeySize || ValidName(kf.Name) != nil {
			t.Fatalf("accepted bad identity %q %x", kf.Name, kf.PubKey)
		}
		// Decrypt only when cheap, so the fuzzer keeps its pace.
		if kf.KDF.N*kf.KDF.R*kf.KDF.P <= testScryptN*8 {
			_, _, err := kf.open([]byte("pw"))
			if err != nil && !errors.Is(err, ErrWrongPassword) && !errors.Is(err, ErrBadFile) {
				t.Fatalf("open: unexpected error %v", err)
			}
		}
	})
}
