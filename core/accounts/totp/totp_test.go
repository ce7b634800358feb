package totp

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

// The RFC 6238 appendix B vectors for SHA-1 (8 digits; the 6-digit code is
// their last six digits, as dynamic truncation keeps the low digits).
func TestRFC6238Vectors(t *testing.T) {
	secret := []byte("12345678901234567890")
	for _, tt := range []struct {
		unix int64
		want string
	}{
		{59, "94287082"},
		{1111111109, "07081804"},
		{1111111111, "14050471"},
		{1234567890, "89005924"},
		{2000000000, "69279037"},
		{20000000000, "65353130"},
	} {
		at := time.Unix(tt.unix, 0)
		if got := hotp(secret, uint64(Step(at)), 8); got != tt.want {
			t.Errorf("T=%d: 8 digits %s, want %s", tt.unix, got, tt.want)
		}
		if got := Code(secret, at); got != tt.want[2:] {
			t.Errorf("T=%d: code %s, want %s", tt.unix, got, tt.want[2:])
		}
	}
}

// RFC 4226 appendix D: HOTP values for counters 0..9.
func TestRFC4226Vectors(t *testing.T) {
	secret := []byte("12345678901234567890")
	want := []string{"755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"}
	for i, w := range want {
		if got := CodeAt(secret, int64(i)); got != w {
			t.Errorf("counter %d: %s, want %s", i, got, w)
		}
	}
}

func TestVerify(t *testing.T) {
	secret := []byte("12345678901234567890")
	at := time.Unix(1111111111, 0) // step 37037037
	now := Step(at)
	for _, tt := range []struct {
		name     string
		code     string
		last     int64
		wantStep int64
		ok       bool
	}{
		{"current", CodeAt(secret, now), 0, now, true},
		{"previous step", CodeAt(secret, now-1), 0, now - 1, true},
		{"next step", CodeAt(secret, now+1), 0, now + 1, true},
		{"two steps old", CodeAt(secret, now-2), 0, 0, false},
		{"two steps ahead", CodeAt(secret, now+2), 0, 0, false},
		{"spaces", CodeAt(secret, now)[:3] + " " + CodeAt(secret, now)[3:], 0, now, true},
		{"replay of the current step", CodeAt(secret, now), now, 0, false},
		{"replay of an earlier step", CodeAt(secret, now-1), now - 1, 0, false},
		{"later step after the last", CodeAt(secret, now+1), now, now + 1, true},
		{"letters", "12a456", 0, 0, false},
		{"too short", CodeAt(secret, now)[:5], 0, 0, false},
		{"too long", CodeAt(secret, now) + "0", 0, 0, false},
		{"empty", "", 0, 0, false},
	} {
		step, ok := Verify(secret, tt.code, at, tt.last)
		if ok != tt.ok || step != tt.wantStep {
			t.Errorf("%s: Verify = %d, %v; want %d, %v", tt.name, step, ok, tt.wantStep, tt.ok)
		}
	}
	if _, ok := Verify(nil, CodeAt(nil, now), at, 0); ok {
		t.Error("an empty secret verified a code")
	}
}

func TestSecretEncoding(t *testing.T) {
	s, err := NewSecret()
	if err != nil || len(s) != SecretSize {
		t.Fatalf("NewSecret = %x, %v", s, err)
	}
	s2, _ := NewSecret()
	if string(s) == string(s2) {
		t.Fatal("two secrets are equal")
	}
	enc := EncodeSecret(s)
	if len(enc) != 32 || strings.ContainsAny(enc, "=") {
		t.Fatalf("encoded %q", enc)
	}
	for _, in := range []string{enc, strings.ToLower(enc), enc[:4] + " " + enc[4:], enc[:8] + "-" + enc[8:]} {
		got, err := DecodeSecret(in)
		if err != nil || string(got) != string(s) {
			t.Errorf("DecodeSecret(%q) = %x, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "AAAA", "A1B2C3D4E5F6G7H8", strings.Repeat("A", 300), "ÄAAAAAAAAAAAAAAA"} {
		if _, err := DecodeSecret(bad); err == nil {
			t.Errorf("DecodeSecret(%q) accepted", bad)
		}
	}
}

func TestURI(t *testing.T) {
	secret := []byte("12345678901234567890")
	got := URI("WiseHosting", "ada+x@example.com", secret)
	want := "otpauth://totp/WiseHosting:ada+x@example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=WiseHosting&algorithm=SHA1&digits=6&period=30"
	if got != want {
		t.Fatalf("URI\n got %s\nwant %s", got, want)
	}
	u, err := url.Parse(URI("Wise Hosting", "a b/c@example.com", secret))
	if err != nil || u.Scheme != "otpauth" || u.Host != "totp" || u.Path != "/Wise Hosting:a b/c@example.com" || u.Query().Get("issuer") != "Wise Hosting" {
		t.Fatalf("URI with spaces parses as %+v, %v", u, err)
	}
}

func FuzzDecodeSecret(f *testing.F) {
	f.Add("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")
	f.Add("gezd gnbv gy3t qojq")
	f.Add("====")
	f.Fuzz(func(t *testing.T, s string) {
		b, err := DecodeSecret(s)
		if err != nil {
			if len(s) > 3 && strings.Contains(err.Error(), s) {
				t.Fatalf("error quotes the input: %v", err)
			}
			return
		}
		if len(b) < 10 || len(b) > maxSecretSize {
			t.Fatalf("accepted %d bytes", len(b))
		}
		again, err := DecodeSecret(EncodeSecret(b))
		if err != nil || string(again) != string(b) {
			t.Fatalf("round trip of %q: %x, %v", s, again, err)
		}
		if c := Code(b, time.Unix(0, 0)); len(c) != Digits {
			t.Fatalf("code %q", c)
		}
	})
}

func FuzzNormalizeCode(f *testing.F) {
	f.Add("123 456")
	f.Add(" 000000 ")
	f.Add("12345")
	f.Fuzz(func(t *testing.T, s string) {
		c, ok := NormalizeCode(s)
		if !ok {
			if c != "" {
				t.Fatalf("rejected %q but returned %q", s, c)
			}
			return
		}
		if len(c) != Digits || strings.Trim(c, "0123456789") != "" {
			t.Fatalf("NormalizeCode(%q) = %q", s, c)
		}
	})
}
