package accounts

import (
	"errors"
	"strings"
	"testing"
)

var testArgon2 = Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}

func TestBackupCodes(t *testing.T) {
	codes, err := newBackupCodes(BackupCodeCount)
	if err != nil || len(codes) != BackupCodeCount {
		t.Fatalf("codes %v, %v", codes, err)
	}
	seen := map[string]bool{}
	for _, c := range codes {
		if len(c) != 9 || c[4] != '-' || seen[c] {
			t.Fatalf("code %q in %v", c, codes)
		}
		seen[c] = true
		canon, err := NormalizeBackupCode(c)
		if err != nil || canon != c[:4]+c[5:] {
			t.Fatalf("NormalizeBackupCode(%q) = %q, %v", c, canon, err)
		}
	}
	for _, tt := range []struct {
		in, want string
	}{
		{"abcd-efgh", "abcdefgh"},
		{" ABCD EFGH ", "abcdefgh"},
		{"abcdefgh", "abcdefgh"},
		{"o0il-1234", "00111234"},
		{"ab-cd-ef-gh", "abcdefgh"},
		{"abcd-efg", ""},
		{"abcd-efghj", ""},
		{"abcd-efgu", ""}, // u is not in Crockford's alphabet
		{"abcd_efgh", ""},
		{"abcd-efgé", ""},
		{"", ""},
		{strings.Repeat("-", 100), ""},
	} {
		got, err := NormalizeBackupCode(tt.in)
		if got != tt.want || (err == nil) != (tt.want != "") {
			t.Errorf("NormalizeBackupCode(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
		if err != nil && !errors.Is(err, ErrMalformedBackupCode) {
			t.Errorf("error %v does not wrap ErrMalformedBackupCode", err)
		}
	}
}

func TestBackupCodeHash(t *testing.T) {
	h, err := hashBackupCode("abcdefgh", testArgon2)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") || strings.Contains(h, "abcdefgh") {
		t.Fatalf("hash %q", h)
	}
	h2, _ := hashBackupCode("abcdefgh", testArgon2)
	if h == h2 {
		t.Fatal("two hashes of one code are equal: no salt?")
	}
	for _, tt := range []struct {
		code string
		want bool
	}{{"abcdefgh", true}, {"abcdefgj", false}, {"", false}} {
		if ok, err := matchBackupCode(tt.code, h); err != nil || ok != tt.want {
			t.Errorf("match %q = %v, %v", tt.code, ok, err)
		}
	}
	// The defaults (OWASP) round-trip too.
	hd, err := hashBackupCode("abcdefgh", DefaultArgon2)
	if err != nil || !strings.HasPrefix(hd, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("default hash %q, %v", hd, err)
	}
	if ok, err := matchBackupCode("abcdefgh", hd); err != nil || !ok {
		t.Fatalf("default match %v, %v", ok, err)
	}
	salt, key := "c2FsdHNhbHRzYWx0c2FsdA", "a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U"
	for _, bad := range []string{
		"", "abcdefgh", "$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=999999999,t=1,p=1$" + salt + "$" + key, // would allocate ~1 TiB
		"$argon2id$v=19$m=64,t=100,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=0,p=1$" + salt + "$" + key,
		"$argon2id$v=19$t=1,m=64,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1$" + salt + "$" + key,
		"$argon2id$v=19$m=064,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "=$" + key,
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$",
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key + "$",
	} {
		if _, err := matchBackupCode("abcdefgh", bad); err == nil {
			t.Errorf("hash %q accepted", bad)
		}
	}
}

func FuzzNormalizeBackupCode(f *testing.F) {
	f.Add("abcd-efgh")
	f.Add(" O0IL 1234 ")
	f.Add("ab\u00e9d-efgh")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := NormalizeBackupCode(s)
		if err != nil {
			if c != "" || (len(s) > 3 && strings.Contains(err.Error(), s)) {
				t.Fatalf("NormalizeBackupCode(%q) = %q, %v", s, c, err)
			}
			return
		}
		if len(c) != BackupCodeLength || strings.Trim(c, backupAlphabet) != "" {
			t.Fatalf("NormalizeBackupCode(%q) = %q", s, c)
		}
		if again, err := NormalizeBackupCode(c[:4] + "-" + c[4:]); err != nil || again != c {
			t.Fatalf("canonical %q does not normalise to itself: %q, %v", c, again, err)
		}
	})
}

func FuzzParseBackupHash(f *testing.F) {
	h, _ := hashBackupCode("abcdefgh", testArgon2)
	f.Add(h)
	f.Add("$argon2id$v=19$m=64,t=1,p=1$$")
	f.Add("$argon2id$v=19$m=4294967295,t=1,p=255$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parseBackupHash(s)
		if err != nil {
			if len(s) > 8 && strings.Contains(err.Error(), s) {
				t.Fatalf("error quotes the input: %v", err)
			}
			return
		}
		if p.p.MemoryKiB > maxArgonMemoryKiB || p.p.Time == 0 || p.p.Time > maxArgonTime || p.p.Threads == 0 ||
			len(p.salt) < 8 || len(p.key) < 16 || len(p.key) > 64 {
			t.Fatalf("accepted %q as %+v", s, p)
		}
	})
}
