package wsproto

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"time"
)

// Direction is who sent a message; it is part of the signed input, so a
// message can never be reflected back to the side that sent it.
type Direction byte

// Directions.
const (
	WorkerToCore Direction = 'w'
	CoreToWorker Direction = 'c'
)

// Protocol limits.
const (
	// MaxFrameSize bounds a WebSocket frame (a message) either way.
	MaxFrameSize = 1<<20 + 64<<10
	// MaxClockSkew is how far a message's ts may differ from the receiver's
	// clock.
	MaxClockSkew = 60 * time.Second
	// ReplayWindow is how many sequence numbers below the highest seen are
	// still accepted (once each); anything older is a replay.
	ReplayWindow = 256
)

// Envelope is every message on the worker WebSocket, both directions: a
// JSON object, one per text frame.
type Envelope struct {
	// Type names the message; see the Type constants.
	Type string `json:"type"`
	// Seq numbers the sender's messages on this connection from 1 upward.
	// Each direction has its own sequence.
	Seq uint64 `json:"seq"`
	// TS is the sender's clock in Unix milliseconds.
	TS int64 `json:"ts"`
	// ReplyTo is the Seq of the message this one answers, when it does.
	ReplyTo uint64 `json:"reply_to,omitempty"`
	// Payload is the type's JSON object; its exact bytes are signed.
	Payload json.RawMessage `json:"payload,omitempty"`
	// MAC is HMAC-SHA256 over SigningInput, base64url without padding.
	MAC string `json:"mac"`
}

// Errors returned by Open and Decode.
var (
	ErrBadFrame = errors.New("malformed envelope")
	ErrBadMAC   = errors.New("bad MAC")
	ErrClock    = errors.New("clock skew beyond the bound")
	ErrReplay   = errors.New("sequence number replayed or too old")
)

// AppendSigningInput appends the bytes a MAC covers to dst:
//
//	"wh1\n" direction "\n" type "\n" seq "\n" ts "\n" reply_to "\n" payload
//
// with numbers in decimal and the payload's exact bytes.
func AppendSigningInput(dst []byte, dir Direction, e *Envelope) []byte {
	dst = append(dst, "wh1\n"...)
	dst = append(dst, byte(dir), '\n')
	dst = append(dst, e.Type...)
	dst = append(dst, '\n')
	dst = strconv.AppendUint(dst, e.Seq, 10)
	dst = append(dst, '\n')
	dst = strconv.AppendInt(dst, e.TS, 10)
	dst = append(dst, '\n')
	dst = strconv.AppendUint(dst, e.ReplyTo, 10)
	dst = append(dst, '\n')
	return append(dst, e.Payload...)
}

// Seal sets e.MAC for a message sent in direction dir.
func Seal(key []byte, dir Direction, e *Envelope) {
	var buf [512]byte
	e.MAC = base64.RawURLEncoding.EncodeToString(Sign(key, AppendSigningInput(buf[:0], dir, e)))
}

// Open checks e.MAC for a message received from direction dir, in
// constant time.
func Open(key []byte, dir Direction, e *Envelope) error {
	if len(key) == 0 {
		return ErrBadMAC
	}
	return OpenWith(NewMAC(key), dir, e)
}

// NewMAC returns the HMAC-SHA256 of an envelope key, for OpenWith: a
// receiver that keeps one per connection saves setting it up per message.
func NewMAC(key []byte) hash.Hash { return hmac.New(sha256.New, key) }

// OpenWith is Open with mac, a NewMAC of the envelope key (it is Reset
// first; it must not be used concurrently).
func OpenWith(mac hash.Hash, dir Direction, e *Envelope) error {
	var macBuf [MACSize + 2]byte
	if base64.RawURLEncoding.DecodedLen(len(e.MAC)) != MACSize {
		return ErrBadMAC
	}
	n, err := base64.RawURLEncoding.Decode(macBuf[:], []byte(e.MAC))
	if err != nil || n != MACSize {
		return ErrBadMAC
	}
	// The signing input's head, then the payload in place: no copy.
	var buf [128]byte
	head := Envelope{Type: e.Type, Seq: e.Seq, TS: e.TS, ReplyTo: e.ReplyTo}
	mac.Reset()
	mac.Write(AppendSigningInput(buf[:0], dir, &head))
	mac.Write(e.Payload)
	var sum [MACSize]byte
	if !hmac.Equal(mac.Sum(sum[:0]), macBuf[:MACSize]) {
		return ErrBadMAC
	}
	return nil
}

// CheckClock reports ErrClock when ts (Unix ms) is further than MaxClockSkew
// from now.
func CheckClock(ts int64, now time.Time) error {
	d := now.Sub(time.UnixMilli(ts))
	if d > MaxClockSkew || d < -MaxClockSkew {
		return ErrClock
	}
	return nil
}

// Decode parses one frame into an envelope, checking its shape (type,
// seq ≥ 1, a MAC, a JSON object payload when present) but not the MAC.
//
// Field names are case-sensitive and each may appear once; unknown fields
// are ignored (their syntax is still checked). A field other than payload
// set to null counts as absent; payload, when present, must be an object.
// Payload holds a copy of the payload's bytes.
func Decode(frame []byte) (*Envelope, error) {
	if len(frame) > MaxFrameSize {
		return nil, fmt.Errorf("%w: %d bytes exceed %d", ErrBadFrame, len(frame), MaxFrameSize)
	}
	var e Envelope
	if err := decodeEnvelope(frame, &e); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadFrame, err)
	}
	switch {
	case e.Type == "" || len(e.Type) > 64:
		return nil, fmt.Errorf("%w: missing or overlong type", ErrBadFrame)
	case e.Seq == 0:
		return nil, fmt.Errorf("%w: seq must start at 1", ErrBadFrame)
	case e.MAC == "":
		return nil, fmt.Errorf("%w: missing mac", ErrBadFrame)
	case len(e.Payload) > 0 && e.Payload[0] != '{':
		return nil, fmt.Errorf("%w: payload must be a JSON object", ErrBadFrame)
	}
	return &e, nil
}

// envelopeFields are the envelope's field names, in the order of the bits
// decodeEnvelope uses to refuse duplicates.
var envelopeFields = [...]string{"type", "seq", "ts", "reply_to", "payload", "mac"}

func decodeEnvelope(frame []byte, e *Envelope) error {
	s := scanner{b: frame}
	var seen uint8
	err := s.object(func(key []byte, complex bool) error {
		k := string(key) // no allocation: compared, not kept
		if complex {
			// Escaped or non-ASCII: never one of ours, but it must not be
			// one of ours in disguise.
			v, err := (&scanner{b: append(append([]byte{'"'}, key...), '"')}).str()
			if err != nil {
				return err
			}
			k = v
		}
		idx := -1
		for i, f := range envelopeFields {
			if k == f {
				idx = i
				break
			}
			if strings.EqualFold(k, f) {
				return fmt.Errorf("field %q: field names are case-sensitive (%q)", k, f)
			}
		}
		if idx < 0 {
			return s.skip()
		}
		if complex {
			return fmt.Errorf("field %q is written with escapes", k)
		}
		if seen&(1<<idx) != 0 {
			return fmt.Errorf("field %q appears twice", k)
		}
		seen |= 1 << idx
		var err error
		switch idx {
		case 0:
			e.Type, err = s.strField()
		case 1:
			e.Seq, err = s.uintField()
		case 2:
			e.TS, err = s.intField()
		case 3:
			e.ReplyTo, err = s.uintField()
		case 4:
			s.space()
			start := s.i
			if err = s.skip(); err == nil {
				e.Payload = append(json.RawMessage(nil), frame[start:s.i]...)
			}
		case 5:
			e.MAC, err = s.strField()
		}
		return err
	})
	if err != nil {
		return err
	}
	return s.end()
}

// Encode marshals a sealed envelope into a frame.
func Encode(e *Envelope) ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("wsproto: encode %s: %w", e.Type, err)
	}
	return b, nil
}

// Window is a receiver's replay protection over one direction of one
// connection (an RFC 4303-style sliding bitmap, 40 bytes): a sequence
// number is accepted once, if it is above the highest seen or at most
// ReplayWindow-1 below it.
type Window struct {
	max  uint64
	bits [ReplayWindow / 64]uint64 // bit i: max-i was seen
}

// Accept records seq and reports whether it is new.
func (w *Window) Accept(seq uint64) bool {
	if seq == 0 {
		return false
	}
	if seq > w.max {
		w.shift(seq - w.max)
		w.max = seq
		w.bits[0] |= 1
		return true
	}
	off := w.max - seq
	if off >= ReplayWindow {
		return false
	}
	word, bit := off/64, off%64
	if w.bits[word]&(1<<bit) != 0 {
		return false
	}
	w.bits[word] |= 1 << bit
	return true
}

// shift moves the bitmap n positions toward older sequence numbers.
func (w *Window) shift(n uint64) {
	if n >= ReplayWindow {
		w.bits = [ReplayWindow / 64]uint64{}
		return
	}
	words, bits := n/64, n%64
	for i := len(w.bits) - 1; i >= 0; i-- {
		var v uint64
		if src := i - int(words); src >= 0 {
			v = w.bits[src] << bits
			if bits > 0 && src-1 >= 0 {
				v |= w.bits[src-1] >> (64 - bits)
			}
		}
		w.bits[i] = v
	}
}
