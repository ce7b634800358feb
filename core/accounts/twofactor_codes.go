package accounts

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Backup codes: BackupCodeCount per set, each BackupCodeLength characters
// of Crockford's base32 alphabet (40 random bits), shown as "xxxx-xxxx".
const (
	BackupCodeCount  = 10
	BackupCodeLength = 8
	backupAlphabet   = "0123456789abcdefghjkmnpqrstvwxyz"
)

// ErrMalformedBackupCode is wrapped by NormalizeBackupCode's errors; they
// never quote the input.
var ErrMalformedBackupCode = errors.New("malformed backup code")

// Argon2Params are the argon2id parameters backup codes are hashed with.
// Each hash records its own, so changing them affects new hashes only.
type Argon2Params struct {
	// Time is the number of passes.
	Time uint32
	// MemoryKiB is the memory per hash in KiB.
	MemoryKiB uint32
	// Threads is the parallelism.
	Threads uint8
}

// DefaultArgon2 is OWASP's argon2id recommendation (19 MiB, 2 passes, 1
// thread): a backup code carries only 40 bits, so its hash must be slow,
// while checking a set of ten stays well under a second.
var DefaultArgon2 = Argon2Params{Time: 2, MemoryKiB: 19 * 1024, Threads: 1}

// Bounds on the parameters a stored hash may carry (a corrupt row must not
// make the core allocate gigabytes), and the salt and key sizes.
const (
	maxArgonMemoryKiB = 256 * 1024
	maxArgonTime      = 16
	argonSaltSize     = 16
	argonKeySize      = 32
)

// newBackupCodes returns n fresh codes in display form ("xxxx-xxxx").
func newBackupCodes(n int) ([]string, error) {
	out := make([]string, n)
	buf := make([]byte, BackupCodeLength)
	for i := range out {
		if _, err := rand.Read(buf); err != nil {
			return nil, fmt.Errorf("accounts: backup codes: %w", err)
		}
		var b strings.Builder
		for j, c := range buf {
			if j == BackupCodeLength/2 {
				b.WriteByte('-')
			}
			b.WriteByte(backupAlphabet[c&31])
		}
		out[i] = b.String()
	}
	return out, nil
}

// NormalizeBackupCode returns the canonical form of a typed backup code:
// lower case, without spaces or dashes, with the letters Crockford's
// base32 reads as digits (o → 0, i and l → 1) replaced. It is an error
// unless that leaves BackupCodeLength characters of the alphabet.
func NormalizeBackupCode(s string) (string, error) {
	if len(s) > 64 {
		return "", fmt.Errorf("accounts: %w: too long", ErrMalformedBackupCode)
	}
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch r {
		case ' ', '-', '\t':
			continue
		case 'o':
			r = '0'
		case 'i', 'l':
			r = '1'
		}
		if r > 0x7f || !strings.ContainsRune(backupAlphabet, r) {
			return "", fmt.Errorf("accounts: %w: want %d letters and digits", ErrMalformedBackupCode, BackupCodeLength)
		}
		b.WriteRune(r)
	}
	if b.Len() != BackupCodeLength {
		return "", fmt.Errorf("accounts: %w: want %d letters and digits", ErrMalformedBackupCode, BackupCodeLength)
	}
	return b.String(), nil
}

// hashBackupCode returns the argon2id hash of a canonical code in PHC
// string form: $argon2id$v=19$m=…,t=…,p=…$salt$key (unpadded base64).
func hashBackupCode(code string, p Argon2Params) (string, error) {
	salt := make([]byte, argonSaltSize)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("accounts: hash backup code: %w", err)
	}
	key := argon2.IDKey([]byte(code), salt, p.Time, p.MemoryKiB, p.Threads, argonKeySize)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemoryKiB, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// parsedHash is a PHC string split into its parts.
type parsedHash struct {
	p         Argon2Params
	salt, key []byte
}

// parseBackupHash parses a PHC string hashBackupCode made, within the
// bounds above. Its errors never quote the input.
func parseBackupHash(s string) (*parsedHash, error) {
	bad := func(why string) error { return fmt.Errorf("accounts: backup code hash: %s", why) }
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return nil, bad("not an argon2id PHC string")
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return nil, bad("unsupported version")
	}
	var h parsedHash
	seen := 0
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, ok := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if !ok || err != nil || n == 0 || v != strconv.FormatUint(n, 10) {
			return nil, bad("bad parameter")
		}
		switch {
		case k == "m" && seen == 0 && n <= maxArgonMemoryKiB:
			h.p.MemoryKiB = uint32(n)
		case k == "t" && seen == 1 && n <= maxArgonTime:
			h.p.Time = uint32(n)
		case k == "p" && seen == 2 && n <= 255:
			h.p.Threads = uint8(n)
		default:
			return nil, bad("bad parameter")
		}
		seen++
	}
	if seen != 3 || h.p.MemoryKiB < 8*uint32(h.p.Threads) {
		return nil, bad("bad parameters")
	}
	var err error
	if h.salt, err = base64.RawStdEncoding.Strict().DecodeString(parts[4]); err != nil || len(h.salt) < 8 || len(h.salt) > 64 {
		return nil, bad("bad salt")
	}
	if h.key, err = base64.RawStdEncoding.Strict().DecodeString(parts[5]); err != nil || len(h.key) < 16 || len(h.key) > 64 {
		return nil, bad("bad key")
	}
	return &h, nil
}

// matchBackupCode reports whether a canonical code matches a stored hash.
func matchBackupCode(code, stored string) (bool, error) {
	h, err := parseBackupHash(stored)
	if err != nil {
		return false, err
	}
	key := argon2.IDKey([]byte(code), h.salt, h.p.Time, h.p.MemoryKiB, h.p.Threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(key, h.key) == 1, nil
}
