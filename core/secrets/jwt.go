package secrets

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

const (
	// JWTTTL is the lifetime of a worker JWT.
	JWTTTL = 15 * time.Minute

	// JWTRefreshSkew is how long before expiry a worker fetches a new JWT.
	JWTRefreshSkew = 2 * time.Minute

	// JWTClockSkew is how far in the future a token's iat may lie, to
	// tolerate clock differences between cores.
	JWTClockSkew = 60 * time.Second

	// JWTMaxLength bounds the length of a token Verify will look at. Real
	// tokens are about 230 bytes.
	JWTMaxLength = 4096

	// MaxKidLength bounds the length of a key id accepted by Sign.
	MaxKidLength = 128
)

// jwtHeader is the only header this package issues or accepts, byte for byte.
var jwtHeader = encodeB64([]byte(`{"alg":"HS256","typ":"JWT"}`))

// Reasons a worker JWT is rejected. Every error from [JWTIssuer.Verify] and
// [WorkerClaims.CheckKid] wraps exactly one of them, so callers can count
// rejections by reason with errors.Is.
var (
	// ErrTokenMalformed means the token is not three canonical base64url
	// segments, or its header is not the HS256 JWT header.
	ErrTokenMalformed = errors.New("malformed token")
	// ErrTokenTooLarge means the token is longer than JWTMaxLength.
	ErrTokenTooLarge = errors.New("token too large")
	// ErrTokenAlgorithm means the header names an alg other than HS256
	// ("none", "HS512", "hs256", ...).
	ErrTokenAlgorithm = errors.New("token algorithm not accepted")
	// ErrTokenSignature means the MAC does not match: forged, tampered,
	// or signed under another server.secret.
	ErrTokenSignature = errors.New("token signature invalid")
	// ErrTokenClaims means the token is authentic but its claims are not
	// exactly the five known ones with valid values.
	ErrTokenClaims = errors.New("token claims invalid")
	// ErrTokenExpired means exp is at or before now.
	ErrTokenExpired = errors.New("token expired")
	// ErrTokenNotYetValid means iat is more than JWTClockSkew ahead.
	ErrTokenNotYetValid = errors.New("token issued in the future")
	// ErrTokenKid means the kid is not the worker's current key id (the
	// key was rotated); see WorkerClaims.CheckKid.
	ErrTokenKid = errors.New("token key id is not the worker's current one")
)

// WorkerClaims are the claims of a worker JWT, exactly these five.
type WorkerClaims struct {
	// Sub is the worker id (workers.id), always positive.
	Sub int64 `json:"sub"`
	// Kid is the key id of the API key the token was minted with.
	Kid string `json:"kid"`
	// Jti is 16 random bytes, base64url, unique per token.
	Jti string `json:"jti"`
	// Iat is the issue time, Unix seconds.
	Iat int64 `json:"iat"`
	// Exp is the expiry, Unix seconds; Exp-Iat ≤ JWTTTL.
	Exp int64 `json:"exp"`
}

// CheckKid returns nil if the token's key id is current, the key id stored
// for the worker now, compared in constant time; otherwise an error wrapping
// [ErrTokenKid]. A JWT minted for a rotated key is useless: callers must call
// CheckKid after [JWTIssuer.Verify] and after loading worker Sub.
func (c *WorkerClaims) CheckKid(current string) error {
	if current == "" || !Equal(c.Kid, current) {
		return fmt.Errorf("secrets: check worker jwt: %w", ErrTokenKid)
	}
	return nil
}

// JWTIssuer signs and verifies worker JWTs: HS256 keyed by
// HKDF(server.secret, [PurposeWorkerJWT]). It is safe for concurrent use.
//
// Verification is deliberately narrow, because this package is the only
// issuer: the header must be exactly {"alg":"HS256","typ":"JWT"}, every
// segment must be canonical base64url without padding, and the claims must be
// exactly {sub, kid, jti, iat, exp}. Unknown claims are rejected
// ([ErrTokenClaims]) rather than ignored: a claim this version does not know
// could be one that restricts the token, and ignoring it would fail open. To
// add a claim, first deploy cores that accept it, then cores that issue it.
type JWTIssuer struct {
	key []byte
	now func() time.Time
}

// NewJWTIssuer returns the worker JWT issuer for serverSecret. now is the
// clock (time.Now when nil); tests inject a fixed one.
func NewJWTIssuer(serverSecret string, now func() time.Time) (*JWTIssuer, error) {
	key, err := DeriveKey([]byte(serverSecret), PurposeWorkerJWT, KeySize)
	if err != nil {
		return nil, fmt.Errorf("secrets: new jwt issuer: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	return &JWTIssuer{key: key, now: now}, nil
}

// Sign returns a JWT for worker workerID and key id kid, valid for [JWTTTL]
// from now, with a fresh random jti, and its expiry. workerID must be
// positive and kid non-empty valid UTF-8 of at most [MaxKidLength] bytes.
func (j *JWTIssuer) Sign(workerID int64, kid string) (token string, expires time.Time, err error) {
	if workerID <= 0 {
		return "", time.Time{}, errors.New("secrets: sign worker jwt: worker id must be positive")
	}
	if kid == "" || len(kid) > MaxKidLength || !utf8.ValidString(kid) {
		return "", time.Time{}, fmt.Errorf("secrets: sign worker jwt: key id must be 1..%d bytes of UTF-8", MaxKidLength)
	}
	jti, err := randomBytes(16)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("secrets: sign worker jwt: %w", err)
	}
	return j.sign(workerID, kid, encodeB64(jti))
}

// sign is Sign with a given jti; the fuzz test uses it to make the same
// tokens in every fuzzing process.
func (j *JWTIssuer) sign(workerID int64, kid, jti string) (string, time.Time, error) {
	iat := j.now().Unix()
	claims := WorkerClaims{
		Sub: workerID,
		Kid: kid,
		Jti: jti,
		Iat: iat,
		Exp: iat + int64(JWTTTL/time.Second),
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("secrets: sign worker jwt: encode claims: %w", err)
	}
	signingInput := jwtHeader + "." + encodeB64(payload)
	return signingInput + "." + encodeB64(j.mac(signingInput)), time.Unix(claims.Exp, 0), nil
}

// Verify checks token and returns its claims. In order, it rejects: a token
// longer than [JWTMaxLength] ([ErrTokenTooLarge]); anything but three
// segments, or a header other than the HS256 one ([ErrTokenMalformed], or
// [ErrTokenAlgorithm] when the header names another alg, "none" included);
// a signature that does not match, compared in constant time before the
// claims are even decoded ([ErrTokenSignature]); claims that do not decode
// to exactly the five known ones, or with sub ≤ 0, empty kid or jti, or a
// lifetime other than 0 < exp-iat ≤ JWTTTL ([ErrTokenClaims]); iat more than
// [JWTClockSkew] ahead ([ErrTokenNotYetValid]); exp ≤ now ([ErrTokenExpired]).
//
// Verify does not know the worker's current key id: callers must also call
// [WorkerClaims.CheckKid].
func (j *JWTIssuer) Verify(token string) (*WorkerClaims, error) {
	if len(token) > JWTMaxLength {
		return nil, fmt.Errorf("secrets: verify worker jwt: %w", ErrTokenTooLarge)
	}
	header, rest, ok1 := strings.Cut(token, ".")
	payload, sig, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(sig, ".") {
		return nil, fmt.Errorf("secrets: verify worker jwt: %w: want 3 segments", ErrTokenMalformed)
	}
	if header != jwtHeader {
		return nil, fmt.Errorf("secrets: verify worker jwt: %w", headerError(header))
	}
	mac, err := decodeB64(sig)
	if err != nil {
		return nil, fmt.Errorf("secrets: verify worker jwt: %w: signature encoding", ErrTokenMalformed)
	}
	if !hmac.Equal(j.mac(token[:len(header)+1+len(payload)]), mac) {
		return nil, fmt.Errorf("secrets: verify worker jwt: %w", ErrTokenSignature)
	}

	// Authentic from here on: only this issuer's key could have made it.
	raw, err := decodeB64(payload)
	if err != nil {
		return nil, fmt.Errorf("secrets: verify worker jwt: %w: payload encoding", ErrTokenMalformed)
	}
	var c WorkerClaims
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		// The decoder's message may quote the payload; don't pass it on.
		return nil, fmt.Errorf("secrets: verify worker jwt: %w: claims do not decode to {sub,kid,jti,iat,exp}", ErrTokenClaims)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("secrets: verify worker jwt: %w: data after claims", ErrTokenClaims)
	}
	switch {
	case c.Sub <= 0:
		return nil, fmt.Errorf("secrets: verify worker jwt: %w: sub not positive", ErrTokenClaims)
	case c.Kid == "":
		return nil, fmt.Errorf("secrets: verify worker jwt: %w: empty kid", ErrTokenClaims)
	case c.Jti == "":
		return nil, fmt.Errorf("secrets: verify worker jwt: %w: empty jti", ErrTokenClaims)
	case c.Iat <= 0 || c.Exp <= c.Iat || c.Exp-c.Iat > int64(JWTTTL/time.Second):
		return nil, fmt.Errorf("secrets: verify worker jwt: %w: bad lifetime", ErrTokenClaims)
	}
	now := j.now().Unix()
	if c.Iat > now+int64(JWTClockSkew/time.Second) {
		return nil, fmt.Errorf("secrets: verify worker jwt: %w", ErrTokenNotYetValid)
	}
	if c.Exp <= now {
		return nil, fmt.Errorf("secrets: verify worker jwt: %w", ErrTokenExpired)
	}
	return &c, nil
}

func (j *JWTIssuer) mac(signingInput string) []byte {
	m := hmac.New(sha256.New, j.key)
	io.WriteString(m, signingInput)
	return m.Sum(nil)
}

// headerError classifies a header that is not ours: another algorithm
// (ErrTokenAlgorithm) or anything else (ErrTokenMalformed). The header is
// bounded by JWTMaxLength and is only inspected, never trusted.
func headerError(header string) error {
	raw, err := decodeB64(header)
	if err != nil {
		return fmt.Errorf("%w: header encoding", ErrTokenMalformed)
	}
	var h struct {
		Alg *string `json:"alg"`
	}
	if json.Unmarshal(raw, &h) != nil {
		return fmt.Errorf("%w: header", ErrTokenMalformed)
	}
	if h.Alg != nil && *h.Alg != "HS256" {
		return ErrTokenAlgorithm
	}
	return fmt.Errorf("%w: header is not the HS256 JWT header", ErrTokenMalformed)
}
