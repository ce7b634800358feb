// Package outbound holds what the senders of the sdk and the built-in
// plugins that make outbound requests to configured addresses share, so
// that each rule is written once:
//
//   - NewClient: an HTTP client that uses no proxy from the environment,
//     follows no redirect, and unless told otherwise refuses, when
//     connecting, every address the address guard (sdk/netguard) refuses.
//   - ReadAnswer and Answer: the part of an HTTP answer a message may
//     quote, secrets already replaced; its status, whether it asks to be
//     retried (RetryAfter reads Retry-After), its body quoted.
//   - Unanswered: what a message says about a request that got no answer.
//   - CheckURL, CheckHeader and HeaderSetting: the url and headers a
//     config block sets.
//   - Clean, Quote and Scrub: text from elsewhere made fit for a message
//     (one line, bounded, no secret).
//   - Limiter and MaxConcurrency: how many requests are in flight at once,
//     and the max_concurrency attribute that says it.
//
// What an answer means (delivered, retried, failed) and the wording of the
// hints that follow it stay with each sender. The package depends on the
// standard library and sdk/netguard only.
package outbound

import (
	"cmp"
	"slices"
	"strings"
	"unicode/utf8"
)

// Redacted stands in a message for each string Scrub removes.
const Redacted = "[redacted]"

// MaxQuote is how many bytes of text Quote keeps.
const MaxQuote = 256

// Clean returns s fit for a one-line message: invalid UTF-8 replaced by
// U+FFFD, control characters (C0, DEL and C1) turned to spaces, runs of
// white space (Unicode's, line and paragraph separators included)
// collapsed to one space and trimmed. When more than limit bytes remain
// it keeps at most limit, cut at a rune boundary, and appends "…"; a limit
// of 0 or less keeps everything.
func Clean(s string, limit int) string {
	return clean(s, limit, false)
}

// Quote returns s for a message that shows it between double quotes: as
// Clean(s, MaxQuote), with double quotes turned to spaces too, so that s
// cannot seem to end the quote early.
func Quote(s string) string {
	return clean(s, MaxQuote, true)
}

func clean(s string, limit int, quotes bool) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f || r >= 0x80 && r < 0xa0 || quotes && r == '"' {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if limit > 0 && len(s) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// Scrub returns msg with every non-empty string of redact replaced by
// Redacted, the longer ones first, so that a secret holding another is
// replaced whole. Scrub text before cutting it (Clean, Quote): a part of a
// secret left after a cut would no longer match.
func Scrub(msg string, redact []string) string {
	if !slices.IsSortedFunc(redact, longerFirst) {
		redact = slices.SortedStableFunc(slices.Values(redact), longerFirst)
	}
	for _, r := range redact {
		if r != "" && strings.Contains(msg, r) {
			msg = strings.ReplaceAll(msg, r, Redacted)
		}
	}
	return msg
}

func longerFirst(a, b string) int { return cmp.Compare(len(b), len(a)) }
