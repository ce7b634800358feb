package wsproto

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// A scanner walks JSON text without reflection. It is what keeps decoding
// an envelope and the hot payloads (heartbeat, app_stats) cheap: every
// envelope is decoded once on receipt, and encoding/json would first
// validate the whole frame, then decode it, then do both again for the
// payload.
//
// It accepts exactly RFC 8259 JSON (the grammar encoding/json checks) and
// nests at most maxDepth deep, as encoding/json does.
type scanner struct {
	b []byte
	i int
}

// maxDepth is encoding/json's nesting limit.
const maxDepth = 10000

var errSyntax = errors.New("invalid JSON")

func (s *scanner) errorf(format string, args ...any) error {
	return fmt.Errorf("%w at offset %d: %s", errSyntax, s.i, fmt.Sprintf(format, args...))
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (s *scanner) peek() byte {
	s.space()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// expect consumes c (after spaces).
func (s *scanner) expect(c byte) error {
	if s.peek() != c {
		if s.i >= len(s.b) {
			return s.errorf("unexpected end, want %q", c)
		}
		return s.errorf("got %q, want %q", s.b[s.i], c)
	}
	s.i++
	return nil
}

// stringToken consumes a string and returns its bytes between the quotes,
// and whether they need decoding (escapes or non-ASCII bytes).
func (s *scanner) stringToken() (raw []byte, complex bool, err error) {
	if err := s.expect('"'); err != nil {
		return nil, false, err
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			raw = s.b[start:s.i]
			s.i++
			return raw, complex, nil
		case c == '\\':
			complex = true
			s.i++
			if s.i >= len(s.b) {
				return nil, false, s.errorf("unterminated escape")
			}
			switch s.b[s.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i++
			case 'u':
				if s.i+4 >= len(s.b) {
					return nil, false, s.errorf("short \\u escape")
				}
				for _, h := range s.b[s.i+1 : s.i+5] {
					if !isHex(h) {
						return nil, false, s.errorf("bad \\u escape")
					}
				}
				s.i += 5
			default:
				return nil, false, s.errorf("bad escape \\%c", s.b[s.i])
			}
		case c < 0x20:
			return nil, false, s.errorf("control character in string")
		default:
			if c >= 0x80 {
				complex = true
			}
			s.i++
		}
	}
	return nil, false, s.errorf("unterminated string")
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// str consumes a string and returns its value as encoding/json would
// (escapes decoded, invalid UTF-8 replaced).
func (s *scanner) str() (string, error) {
	start := s.i
	raw, complex, err := s.stringToken()
	if err != nil {
		return "", err
	}
	if !complex || (utf8.Valid(raw) && !containsByte(raw, '\\')) {
		return string(raw), nil
	}
	var v string
	if err := json.Unmarshal(s.b[start:s.i], &v); err != nil {
		return "", s.errorf("%v", err)
	}
	return v, nil
}

func containsByte(b []byte, c byte) bool {
	for _, x := range b {
		if x == c {
			return true
		}
	}
	return false
}

// number consumes a number and returns its text.
func (s *scanner) number() ([]byte, error) {
	s.space()
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case s.i < len(s.b) && '1' <= s.b[s.i] && s.b[s.i] <= '9':
		s.digits()
	default:
		return nil, s.errorf("bad number")
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if s.digits() == 0 {
			return nil, s.errorf("bad fraction")
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if s.digits() == 0 {
			return nil, s.errorf("bad exponent")
		}
	}
	return s.b[start:s.i], nil
}

func (s *scanner) digits() int {
	n := 0
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
		n++
	}
	return n
}

// literal consumes true, false or null.
func (s *scanner) literal() error {
	for _, lit := range []string{"true", "false", "null"} {
		if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
			s.i += len(lit)
			return nil
		}
	}
	return s.errorf("bad literal")
}

// null consumes null if it comes next.
func (s *scanner) null() bool {
	if s.peek() == 'n' && len(s.b)-s.i >= 4 && string(s.b[s.i:s.i+4]) == "null" {
		s.i += 4
		return true
	}
	return false
}

// skip consumes one value of any kind, checking its syntax.
func (s *scanner) skip() error {
	// Containers are walked iteratively; stack holds whether each open
	// container is an object.
	var stackArr [64]bool
	stack := stackArr[:0]
	for {
		// A value.
		switch c := s.peek(); {
		case c == '{' || c == '[':
			if len(stack) >= maxDepth {
				return s.errorf("nested too deep")
			}
			s.i++
			stack = append(stack, c == '{')
			if c == '{' {
				if s.peek() == '}' {
					s.i++
					stack = stack[:len(stack)-1]
					break
				}
				if _, _, err := s.stringToken(); err != nil {
					return err
				}
				if err := s.expect(':'); err != nil {
					return err
				}
			} else if s.peek() == ']' {
				s.i++
				stack = stack[:len(stack)-1]
				break
			}
			continue // the container's first value
		case c == '"':
			if _, _, err := s.stringToken(); err != nil {
				return err
			}
		case c == '-' || '0' <= c && c <= '9':
			if _, err := s.number(); err != nil {
				return err
			}
		case c == 't' || c == 'f' || c == 'n':
			if err := s.literal(); err != nil {
				return err
			}
		case c == 0 && s.i >= len(s.b):
			return s.errorf("unexpected end")
		default:
			return s.errorf("unexpected %q", c)
		}
		// After a value: close containers or move to the next element.
		for {
			if len(stack) == 0 {
				return nil
			}
			obj := stack[len(stack)-1]
			c := s.peek()
			if c == ',' {
				s.i++
				if obj {
					if _, _, err := s.stringToken(); err != nil {
						return err
					}
					if err := s.expect(':'); err != nil {
						return err
					}
				}
				break
			}
			if (obj && c == '}') || (!obj && c == ']') {
				s.i++
				stack = stack[:len(stack)-1]
				continue
			}
			return s.errorf("want ',' or the container's end")
		}
	}
}

// object walks an object, calling field for each key (its raw bytes, and
// whether they need decoding); field must consume the value.
func (s *scanner) object(field func(key []byte, complex bool) error) error {
	if err := s.expect('{'); err != nil {
		return err
	}
	if s.peek() == '}' {
		s.i++
		return nil
	}
	for {
		key, complex, err := s.stringToken()
		if err != nil {
			return err
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		if err := field(key, complex); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return s.errorf("want ',' or '}'")
		}
	}
}

// end checks that only spaces remain.
func (s *scanner) end() error {
	if s.peek() != 0 || s.i < len(s.b) {
		return s.errorf("data after the value")
	}
	return nil
}

// uintField consumes a number (or null: zero) for a uint64 field, as
// encoding/json would accept it.
func (s *scanner) uintField() (uint64, error) {
	if s.null() {
		return 0, nil
	}
	n, err := s.number()
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(string(n), 10, 64)
	if err != nil {
		return 0, s.errorf("%s is not an unsigned 64-bit integer", n)
	}
	return v, nil
}

// intField is uintField for int64.
func (s *scanner) intField() (int64, error) {
	if s.null() {
		return 0, nil
	}
	n, err := s.number()
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil {
		return 0, s.errorf("%s is not a 64-bit integer", n)
	}
	return v, nil
}

// strField consumes a string (or null: empty).
func (s *scanner) strField() (string, error) {
	if s.null() {
		return "", nil
	}
	if s.peek() != '"' {
		return "", s.errorf("want a string")
	}
	return s.str()
}
