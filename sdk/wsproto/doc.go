// Package wsproto holds the worker protocol shared by the core and the
// workers: the signed envelope exchanged over the worker WebSocket and the
// key handling both sides need to sign and verify it.
//
// Envelopes are authenticated with HMAC-SHA256 under a per-worker envelope
// key derived (see [EnvelopeKey]) from the worker's own API key. The worker
// derives it from the key it was given; the core derives it once when it mints
// the key and keeps it only encrypted. Nothing a worker is sent afterwards (its
// JWT, its key id) and nothing the core stores in the clear (the API key's
// lookup hash) allows anyone to compute it.
//
// This package imports only the standard library.
package wsproto
