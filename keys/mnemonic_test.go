package keys

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// The 24-word English vectors of trezor/python-mnemonic vectors.json (the
// BIP39 reference vectors), whose seeds use the passphrase "TREZOR".
var bip39Vectors = []struct{ entropy, mnemonic, seed string }{
	{
		"0000000000000000000000000000000000000000000000000000000000000000",
		"abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon art",
		"bda85446c68413707090a52022edd26a1c9462295029f2e60cd7c4f2bbd3097170af7a4d73245cafa9c3cca8d561a7c3de6f5d4a10be8ed2a5e608d68f92fcc8",
	},
	{
		"7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f",
		"legal winner thank year wave sausage worth useful legal winner thank year wave sausage worth useful legal winner thank year wave sausage worth title",
		"bc09fca1804f7e69da93c2f2028eb238c227f2e9dda30cd63699232578480a4021b146ad717fbb7e451ce9eb835f43620bf5c514db0f8add49f5d121449d3e87",
	},
	{
		"8080808080808080808080808080808080808080808080808080808080808080",
		"letter advice cage absurd amount doctor acoustic avoid letter advice cage absurd amount doctor acoustic avoid letter advice cage absurd amount doctor acoustic bless",
		"c0c519bd0e91a2ed54357d9d1ebef6f5af218a153624cf4f2da911a0ed8f7a09e2ef61af0aca007096df430022f7a2b6fb91661a9589097069720d015e4e982f",
	},
	{
		"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
		"zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo vote",
		"dd48c104698c30cfe2b6142103248622fb7bb0ff692eebb00089b32d22484e1613912f0a5b694407be899ffd31ed3992c456cdf60f5d4564b8ba3f05a69890ad",
	},
	{
		"68a79eaca2324873eacc50cb9c6eca8cc68ea5d936f98787c60c7ebc74e6ce7c",
		"hamster diagram private dutch cause delay private meat slide toddler razor book happy fancy gospel tennis maple dilemma loan word shrug inflict delay length",
		"64c87cde7e12ecf6704ab95bb1408bef047c22db4cc7491c4271d170a1b213d20b385bc1588d9c7b38f1b39d415665b8a9030c9ec653d75e65f847d8fc1fc440",
	},
	{
		"9f6a2878b2520799a44ef18bc7df394e7061a224d2c33cd015b157d746869863",
		"panda eyebrow bullet gorilla call smoke muffin taste mesh discover soft ostrich alcohol speed nation flash devote level hobby quick inner drive ghost inside",
		"72be8e052fc4919d2adf28d5306b5474b0069df35b02303de8c1729c9538dbb6fc2d731d5f832193cd9fb6aeecbc469594a70e3dd50811b5067f3b88b28c3e8d",
	},
	{
		"066dca1a2bb7e8a1db2832148ce9933eea0f3ac9548d793112d9a95c9407efad",
		"all hour make first leader extend hole alien behind guard gospel lava path output census museum junior mass reopen famous sing advance salt reform",
		"26e975ec644423f4a4c4f4215ef09b4bd7ef924e85d1d17c4cf3f136c2863cf6df0a475045652c57eb5fb41513ca2a2d67722b77e954b4b3fc11f7590449191d",
	},
	{
		"f585c11aec520db57dd353c69554b21a89b20fb0650966fa0a9d6f74fd989d8f",
		"void come effort suffer camp survey warrior heavy shoot primary clutch crush open amazing screen patrol group space point ten exist slush involve unfold",
		"01f5bced59dec48e362f2c45b5de68b9fd6c92c6634f44d6d40aab69056506f0e35524a518034ddc1192e1dacd32c1ed3eaa3c3b131c88ed8e7e54c49a5d0998",
	},
}

func TestBIP39Vectors(t *testing.T) {
	for _, v := range bip39Vectors {
		t.Run(v.mnemonic[:strings.IndexByte(v.mnemonic, ' ')], func(t *testing.T) {
			entropy, err := hex.DecodeString(v.entropy)
			if err != nil {
				t.Fatal(err)
			}
			m, err := MnemonicFromEntropy(entropy)
			if err != nil || m != v.mnemonic {
				t.Fatalf("MnemonicFromEntropy = %q, %v; want %q", m, err, v.mnemonic)
			}
			got, err := EntropyFromMnemonic(v.mnemonic)
			if err != nil || !bytes.Equal(got, entropy) {
				t.Fatalf("EntropyFromMnemonic = %x, %v; want %s", got, err, v.entropy)
			}
			seed, err := Seed(v.mnemonic, "TREZOR")
			if err != nil || hex.EncodeToString(seed) != v.seed {
				t.Fatalf("Seed = %x, %v; want %s", seed, err, v.seed)
			}
			// Case and whitespace do not change the seed.
			messy := "\t " + strings.ToUpper(strings.ReplaceAll(v.mnemonic, " ", "  \n")) + "\r\n"
			seed2, err := Seed(messy, "TREZOR")
			if err != nil || !bytes.Equal(seed, seed2) {
				t.Fatalf("messy mnemonic: seed %x, %v", seed2, err)
			}
		})
	}
}

// The wordlist comes from a dependency; pin it to the official english.txt
// (sha256 of the file, one word per line).
func TestWordListIsOfficial(t *testing.T) {
	const want = "2f5eed53a4727b4bf8880d8f3f199efc90e58503646d9ff8eff3a2ed3b24dbda"
	sum := sha256.Sum256([]byte(strings.Join(wordList, "\n") + "\n"))
	if got := hex.EncodeToString(sum[:]); got != want {
		t.Fatalf("wordlist sha256 %s, want %s", got, want)
	}
	if err := errWordList(); err != nil {
		t.Fatal(err)
	}
}

func TestMnemonicRejected(t *testing.T) {
	art := strings.Repeat("abandon ", 23) + "art"
	cases := []struct{ name, mnemonic string }{
		{"empty", ""},
		{"bad checksum", strings.Repeat("abandon ", 24)},
		{"swapped words", "art " + strings.Repeat("abandon ", 23)},
		{"unknown word", strings.Repeat("abandon ", 23) + "zzzz"},
		{"23 words", strings.Repeat("abandon ", 22) + "art"},
		{"25 words", art + " abandon"},
		// A valid 12-word BIP39 mnemonic: Agora keys are 24 words only.
		{"12 words", strings.Repeat("abandon ", 11) + "about"},
		{"non-ascii lookalike", strings.Repeat("abandon ", 23) + "аrt"}, // Cyrillic а
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := NormalizeMnemonic(c.mnemonic); !errors.Is(err, ErrBadMnemonic) {
				t.Fatalf("err %v, want ErrBadMnemonic", err)
			}
			if _, err := Seed(c.mnemonic, ""); !errors.Is(err, ErrBadMnemonic) {
				t.Fatalf("Seed err %v, want ErrBadMnemonic", err)
			}
		})
	}
	// Errors name the position, never the (secret) word.
	_, err := NormalizeMnemonic(strings.Repeat("abandon ", 23) + "zzzz")
	if err == nil || strings.Contains(err.Error(), "zzzz") || !strings.Contains(err.Error(), "word 24") {
		t.Fatalf("unknown-word error %q", err)
	}
	if _, err := MnemonicFromEntropy(make([]byte, 16)); err == nil {
		t.Fatal("128-bit entropy accepted")
	}
}

func TestNewMnemonic(t *testing.T) {
	seen := map[string]bool{}
	for range 8 {
		m, err := NewMnemonic()
		if err != nil {
			t.Fatal(err)
		}
		if n := len(strings.Fields(m)); n != MnemonicWords {
			t.Fatalf("%d words", n)
		}
		if canon, err := NormalizeMnemonic(m); err != nil || canon != m {
			t.Fatalf("fresh mnemonic not canonical: %v", err)
		}
		if seen[m] {
			t.Fatal("NewMnemonic repeated itself")
		}
		seen[m] = true
	}
}

func TestSeedPassphraseNFKD(t *testing.T) {
	m := bip39Vectors[0].mnemonic
	composed, err := Seed(m, "caf\u00e9") // é as one code point
	if err != nil {
		t.Fatal(err)
	}
	decomposed, err := Seed(m, "cafe\u0301") // e + combining acute
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(composed, decomposed) {
		t.Fatal("passphrase not NFKD-normalized")
	}
	plain, _ := Seed(m, "cafe")
	if bytes.Equal(plain, composed) {
		t.Fatal("passphrase accents ignored")
	}
}
