package hub

import (
	"strings"
	"unicode/utf8"

	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

// stripControl removes ANSI escape sequences (ECMA-48: CSI "ESC [ … final",
// OSC "ESC ] … BEL|ST", DCS/SOS/PM/APC "ESC P|X|^|_ … ST" and two-byte
// escapes) and NUL bytes from s. An unterminated sequence is dropped to the
// end of s. With oneLine set, newlines become spaces and a trailing CR goes,
// so the result is one line. Text without any of those bytes is returned as
// is, without allocating.
func stripControl(s string, oneLine bool) string {
	if !needsStrip(s, oneLine) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == 0:
			i++
		case c == '\n' && oneLine:
			b.WriteByte(' ')
			i++
		case c == '\r' && oneLine && i == len(s)-1:
			i++
		case c == 0x1b:
			i = skipEscape(s, i)
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String()
}

func needsStrip(s string, oneLine bool) bool {
	if strings.IndexByte(s, 0x1b) >= 0 || strings.IndexByte(s, 0) >= 0 {
		return true
	}
	return oneLine && (strings.IndexByte(s, '\n') >= 0 || strings.HasSuffix(s, "\r"))
}

// skipEscape returns the index just past the escape sequence at s[i] (ESC).
func skipEscape(s string, i int) int {
	i++ // ESC
	if i >= len(s) {
		return i
	}
	switch s[i] {
	case '[': // CSI: parameters 0x30–0x3F, intermediates 0x20–0x2F, final 0x40–0x7E
		for i++; i < len(s); i++ {
			if c := s[i]; c >= 0x40 && c <= 0x7e {
				return i + 1
			} else if c < 0x20 || c > 0x3f {
				return i // malformed: stop at the offending byte, keep it
			}
		}
		return i
	case ']', 'P', 'X', '^', '_': // string sequences, ended by BEL (OSC) or ST (ESC \)
		for i++; i < len(s); i++ {
			if s[i] == 0x07 {
				return i + 1
			}
			if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '\\' {
				return i + 2
			}
		}
		return i
	default: // ESC, intermediates 0x20–0x2F, then one final byte 0x30–0x7E
		for ; i < len(s) && s[i] >= 0x20 && s[i] <= 0x2f; i++ {
		}
		if i < len(s) && s[i] >= 0x30 && s[i] <= 0x7e {
			i++
		}
		return i
	}
}

// cutUTF8 returns s cut to at most n bytes without splitting a UTF-8
// sequence.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// sanitizeLine makes a runtime log line storable: control sequences and
// NUL stripped, one line, at most wsproto.MaxLogLine bytes.
func sanitizeLine(s string) string {
	return cutUTF8(stripControl(s, true), wsproto.MaxLogLine)
}

// capBuildLog keeps a build log within max bytes: when longer, its head and
// its tail around wsproto.TruncationMarker, so both the early failure
// context and the end of the run survive. Cuts respect UTF-8.
func capBuildLog(s string, max int) string {
	if len(s) <= max {
		return s
	}
	keep := max - len(wsproto.TruncationMarker)
	if keep <= 0 {
		return cutUTF8(s, max)
	}
	head := cutUTF8(s, keep/2)
	start := len(s) - (keep - keep/2)
	for start < len(s) && !utf8.RuneStart(s[start]) {
		start++
	}
	return head + wsproto.TruncationMarker + s[start:]
}
