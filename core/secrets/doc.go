// Package secrets holds the core's security primitives: HKDF key derivation
// from server.secret, the AES-256-GCM column cipher, worker API keys and key
// ids, the worker JWT, and constant-time comparison.
//
// Trust model:
//
//   - Every platform key derives from server.secret with HKDF-SHA256 and its
//     own purpose label ([DeriveKey] and the Purpose constants), so keys never
//     collide and all of them rotate with the secret.
//   - Rotating server.secret does not strand data at rest: the column cipher
//     is a keyring ([NewCipher] with the previous secrets) that encrypts with
//     the current key only and decrypts with any key of the ring;
//     [Cipher.NeedsReencrypt] finds the values still under an old key.
//     Nothing else accepts a previous secret: worker JWTs signed with the old
//     key simply fail and workers fetch new ones with their API keys.
//   - No worker ever holds server.secret. The operator mints a worker's API
//     key on the core ([GenerateAPIKey], or [Cipher.NewWorkerCredentials] for
//     the whole set); it is shown once and the core stores only its lookup
//     hash ([HashAPIKey]).
//   - A worker trades its API key for a short-lived JWT ([JWTIssuer]) whose
//     claims are exactly {sub, kid, iat, exp, jti}. The kid is a random key id
//     minted with the API key ([NewKeyID]); it reveals nothing about the key
//     and changes when the key is rotated, which makes older JWTs useless
//     ([WorkerClaims.CheckKid]).
//   - Envelopes on the worker WebSocket are signed with a key derived from the
//     worker's raw API key (wsproto.EnvelopeKey). The core derives it at mint
//     time and keeps it only encrypted with the column cipher. Neither a JWT
//     nor the lookup hash lets anyone sign envelopes.
//
// Nothing in this package logs, and no error it returns contains key
// material, plaintext or token contents.
package secrets
