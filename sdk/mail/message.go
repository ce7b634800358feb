package mail

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"mime/multipart"
	"mime/quotedprintable"
	"net/textproto"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits of a message.
const (
	// MaxRecipients bounds To.
	MaxRecipients = 100
	// MaxSubject bounds the subject, in bytes before encoding.
	MaxSubject = 1000
	// MaxBody bounds each of Text and HTML, in bytes.
	MaxBody = 4 << 20
	// MaxHeaders bounds Headers; MaxHeaderValue each value's length.
	MaxHeaders     = 16
	MaxHeaderValue = 900
	// maxMessageID bounds a given Message-ID, maxHeaderName the name of
	// an extra header field.
	maxMessageID  = 250
	maxHeaderName = 76
)

// Message is one e-mail. Bytes renders it.
type Message struct {
	// From is the sender, as ParseAddress accepts it. Required.
	From string
	// To are the recipients (1 to MaxRecipients), as ParseAddress accepts
	// them. Each is sent the message, and all of them are in its To header.
	To []string
	// Subject is the subject line, UTF-8 without line breaks; it is
	// RFC 2047-encoded when it is not plain printable ASCII.
	Subject string
	// Text is the text/plain body, HTML the text/html body. At least one
	// is required; with both the message is multipart/alternative (the
	// text first, as the fallback). Both are UTF-8 (invalid sequences are
	// replaced with U+FFFD) sent quoted-printable; any line ending becomes
	// CRLF.
	Text, HTML string
	// Date is the Date header; zero means the time of rendering.
	Date time.Time
	// MessageID is the Message-ID header, "<left@right>" in printable
	// ASCII; "" means a random one at the From address's domain.
	MessageID string
	// Headers are extra header fields, e.g. "Auto-Submitted":
	// "auto-generated". Names are printable ASCII without ':'; values are
	// printable ASCII (tabs allowed) without line breaks. The fields
	// Bytes writes itself (From, To, Subject, Date, Message-ID,
	// MIME-Version, Content-*) and Cc, Bcc, Sender and Return-Path are
	// refused.
	Headers map[string]string
}

// prepared is a rendered message with its envelope.
type prepared struct {
	from string   // envelope sender: local@domain
	to   []string // envelope recipients
	data []byte   // the message, CRLF line endings
}

// Bytes renders m as an RFC 5322 message with CRLF line endings, checking
// every field (see Message); its errors say what is wrong.
func (m *Message) Bytes() ([]byte, error) {
	p, err := m.prepare(time.Now())
	if err != nil {
		return nil, err
	}
	return p.data, nil
}

// refusedHeaders are the header fields Headers may not set, canonical.
var refusedHeaders = []string{
	"From", "To", "Cc", "Bcc", "Subject", "Date", "Message-Id", "Mime-Version", "Sender", "Return-Path",
}

func (m *Message) prepare(now time.Time) (*prepared, error) {
	from, err := ParseAddress(m.From)
	if err != nil {
		return nil, fmt.Errorf("from: %w", err)
	}
	p := &prepared{from: from.Address}
	if len(m.To) == 0 {
		return nil, errors.New("to: at least one recipient is required")
	}
	if len(m.To) > MaxRecipients {
		return nil, fmt.Errorf("to: at most %d recipients, not %d", MaxRecipients, len(m.To))
	}
	toHeader := make([]string, 0, len(m.To))
	for i, raw := range m.To {
		a, err := ParseAddress(raw)
		if err != nil {
			return nil, fmt.Errorf("to[%d]: %w", i, err)
		}
		if slices.ContainsFunc(p.to, func(x string) bool { return strings.EqualFold(x, a.Address) }) {
			return nil, fmt.Errorf("to[%d]: %s is listed twice", i, a.Address)
		}
		p.to = append(p.to, a.Address)
		toHeader = append(toHeader, a.String())
	}
	subject, err := encodeSubject(m.Subject)
	if err != nil {
		return nil, err
	}
	if m.Text == "" && m.HTML == "" {
		return nil, errors.New("the message has no body: set Text, HTML or both")
	}
	if len(m.Text) > MaxBody || len(m.HTML) > MaxBody {
		return nil, fmt.Errorf("a body is longer than %d bytes", MaxBody)
	}
	msgID := m.MessageID
	if msgID == "" {
		msgID = "<" + rand.Text() + "@" + from.Address[strings.LastIndexByte(from.Address, '@')+1:] + ">"
	} else if err := checkMessageID(msgID); err != nil {
		return nil, err
	}
	extra, err := checkHeaders(m.Headers)
	if err != nil {
		return nil, err
	}
	date := m.Date
	if date.IsZero() {
		date = now
	}

	var b bytes.Buffer
	writeHeader(&b, "Date", date.Format(time.RFC1123Z))
	writeHeader(&b, "From", from.String())
	writeHeader(&b, "To", strings.Join(toHeader, ", "))
	if subject != "" {
		writeHeader(&b, "Subject", subject)
	}
	writeHeader(&b, "Message-ID", msgID)
	writeHeader(&b, "MIME-Version", "1.0")
	for _, h := range extra {
		writeHeader(&b, h[0], h[1])
	}
	switch {
	case m.Text != "" && m.HTML != "":
		mw := multipart.NewWriter(&b)
		writeHeader(&b, "Content-Type", `multipart/alternative; boundary="`+mw.Boundary()+`"`)
		b.WriteString("\r\n")
		for _, part := range []struct{ typ, body string }{{"text/plain", m.Text}, {"text/html", m.HTML}} {
			w, err := mw.CreatePart(textproto.MIMEHeader{
				"Content-Type":              {part.typ + "; charset=utf-8"},
				"Content-Transfer-Encoding": {"quoted-printable"},
			})
			if err != nil {
				return nil, fmt.Errorf("rendering the %s part: %w", part.typ, err)
			}
			if err := writeQP(w, part.body); err != nil {
				return nil, fmt.Errorf("rendering the %s part: %w", part.typ, err)
			}
		}
		if err := mw.Close(); err != nil {
			return nil, fmt.Errorf("rendering the message: %w", err)
		}
	default:
		typ, body := "text/plain", m.Text
		if body == "" {
			typ, body = "text/html", m.HTML
		}
		writeHeader(&b, "Content-Type", typ+"; charset=utf-8")
		writeHeader(&b, "Content-Transfer-Encoding", "quoted-printable")
		b.WriteString("\r\n")
		if err := writeQP(&b, body); err != nil {
			return nil, fmt.Errorf("rendering the body: %w", err)
		}
		b.WriteString("\r\n")
	}
	p.data = b.Bytes()
	return p, nil
}

// writeQP writes body quoted-printable: invalid UTF-8 replaced, line
// endings (CRLF, LF or CR) written as CRLF, lines soft-wrapped at 76.
func writeQP(w interface{ Write([]byte) (int, error) }, body string) error {
	body = strings.ToValidUTF8(body, "\uFFFD")
	body = strings.ReplaceAll(body, "\r\n", "\n")
	body = strings.ReplaceAll(body, "\r", "\n")
	qp := quotedprintable.NewWriter(w)
	if _, err := qp.Write([]byte(body)); err != nil {
		return err
	}
	return qp.Close()
}

// encodeSubject checks a subject and returns it as header text: as it is
// when it is printable ASCII, else as RFC 2047 encoded words; spaces at
// either end are dropped.
func encodeSubject(s string) (string, error) {
	switch {
	case len(s) > MaxSubject:
		return "", fmt.Errorf("subject: longer than %d bytes", MaxSubject)
	case strings.ContainsAny(s, "\r\n"):
		return "", errors.New("subject: holds a line break")
	case !utf8.ValidString(s):
		return "", errors.New("subject: not valid UTF-8")
	case hasControl(strings.ReplaceAll(s, "\t", " ")):
		return "", errors.New("subject: holds a control character")
	}
	s = strings.Trim(s, " ")
	if !needsEncoding(s) {
		return s, nil
	}
	return encodeWords(s), nil
}

// maxWord is the longest run without white space a header text may have
// as it is: a longer one could not be folded into a line of at most 998
// bytes, so the text is sent as encoded words, which can.
const maxWord = 900

// needsEncoding reports whether a header text must be sent as encoded
// words: anything but printable ASCII and spaces, "=?" (which a reader
// would take for the start of an encoded word), a run of spaces (a fold
// there would not read back the same), or a word longer than maxWord.
func needsEncoding(s string) bool {
	run := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < ' ' || c > '~' {
			return true
		}
		if c == ' ' {
			run = 0
		} else if run++; run > maxWord {
			return true
		}
	}
	return strings.Contains(s, "=?") || strings.Contains(s, "  ")
}

// encodeWords returns s as RFC 2047 "B" encoded words of at most 75
// characters, split at rune boundaries and separated by spaces (where
// writeHeader may fold).
func encodeWords(s string) string {
	const chunk = 45 // bytes: 60 base64 characters, 72 with =?utf-8?b? and ?=
	var words []string
	for s != "" {
		n := min(chunk, len(s))
		for n < len(s) && !utf8.RuneStart(s[n]) {
			n--
		}
		words = append(words, "=?utf-8?b?"+base64.StdEncoding.EncodeToString([]byte(s[:n]))+"?=")
		s = s[n:]
	}
	return strings.Join(words, " ")
}

// checkMessageID checks a given Message-ID: "<left@right>", printable
// ASCII without spaces, angle brackets or a second @.
func checkMessageID(id string) error {
	if len(id) > maxMessageID || len(id) < 5 || id[0] != '<' || id[len(id)-1] != '>' {
		return fmt.Errorf("message id %q: must be <left@right>, at most %d bytes", id, maxMessageID)
	}
	inner := id[1 : len(id)-1]
	left, right, ok := strings.Cut(inner, "@")
	if !ok || left == "" || right == "" || strings.Contains(right, "@") {
		return fmt.Errorf("message id %q: must be <left@right>", id)
	}
	for i := 0; i < len(inner); i++ {
		if c := inner[i]; c <= ' ' || c > '~' || c == '<' || c == '>' {
			return fmt.Errorf("message id %q: only printable ASCII without spaces or angle brackets", id)
		}
	}
	return nil
}

// checkHeaders checks the extra header fields and returns them sorted by
// name, names canonical.
func checkHeaders(h map[string]string) ([][2]string, error) {
	if len(h) > MaxHeaders {
		return nil, fmt.Errorf("headers: at most %d extra header fields, not %d", MaxHeaders, len(h))
	}
	out := make([][2]string, 0, len(h))
	for name, value := range h {
		if name == "" || len(name) > maxHeaderName {
			return nil, fmt.Errorf("headers: a header name must have 1 to %d bytes", maxHeaderName)
		}
		for i := 0; i < len(name); i++ {
			if c := name[i]; c <= ' ' || c > '~' || c == ':' {
				return nil, fmt.Errorf("headers: %q is not a header name (printable ASCII without spaces or ':')", name)
			}
		}
		canon := textproto.CanonicalMIMEHeaderKey(name)
		if slices.Contains(refusedHeaders, canon) || strings.HasPrefix(canon, "Content-") {
			return nil, fmt.Errorf("headers: %q is refused: the message sets it itself, or it does not belong in a sent message", name)
		}
		if slices.ContainsFunc(out, func(x [2]string) bool { return x[0] == canon }) {
			return nil, fmt.Errorf("headers: %q is set twice (header names are case-insensitive)", name)
		}
		if len(value) > MaxHeaderValue {
			return nil, fmt.Errorf("headers: the value of %q is longer than %d bytes", name, MaxHeaderValue)
		}
		for i := 0; i < len(value); i++ {
			if c := value[i]; c == '\r' || c == '\n' {
				return nil, fmt.Errorf("headers: the value of %q holds a line break", name)
			} else if c != '\t' && (c < ' ' || c > '~') {
				return nil, fmt.Errorf("headers: the value of %q holds a byte other than printable ASCII", name)
			}
		}
		value = strings.Trim(value, " \t")
		if value == "" {
			return nil, fmt.Errorf("headers: the value of %q is empty", name)
		}
		out = append(out, [2]string{canon, value})
	}
	slices.SortFunc(out, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	return out, nil
}

// foldAt is the line length (CRLF excluded) writeHeader folds beyond.
const foldAt = 78

// writeHeader writes "name: value" and CRLF, folded before white space so
// that lines stay within foldAt characters where the value allows it. A
// line is only broken where what precedes the break ends with a character
// other than white space, so no line is white space alone.
func writeHeader(b *bytes.Buffer, name, value string) {
	line := name + ": " + value
	minBreak := len(name) + 2 // never fold right after the colon
	for len(line) > foldAt {
		i := breakBefore(line, foldAt, minBreak)
		if i < 0 {
			break
		}
		b.WriteString(line[:i])
		b.WriteString("\r\n")
		line = line[i:]
		minBreak = 1
	}
	b.WriteString(line)
	b.WriteString("\r\n")
}

// breakBefore returns the index of the last white space in line before
// limit (or the first one after it when there is none) that follows a
// non-white-space character at or after min, or -1.
func breakBefore(line string, limit, min int) int {
	ok := func(i int) bool {
		return i >= min && i < len(line) && (line[i] == ' ' || line[i] == '\t') &&
			line[i-1] != ' ' && line[i-1] != '\t' && strings.TrimLeft(line[i:], " \t") != ""
	}
	for i := limit; i > 0; i-- {
		if ok(i) {
			return i
		}
	}
	for i := limit + 1; i < len(line); i++ {
		if ok(i) {
			return i
		}
	}
	return -1
}
