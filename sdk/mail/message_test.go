package mail

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/sdk/mail/mailtest"
)

// parse renders m and takes it apart again, checking the framing on the
// way: CRLF line endings only, no line beyond 998 bytes.
func parse(t *testing.T, m *Message) ([]byte, *mailtest.Parsed) {
	t.Helper()
	data, err := m.Bytes()
	if err != nil {
		t.Fatalf("Bytes: %v", err)
	}
	checkFraming(t, data)
	p, err := mailtest.Message{Data: data}.Parse()
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	return data, p
}

func checkFraming(t testing.TB, data []byte) {
	t.Helper()
	if !bytes.HasSuffix(data, []byte("\r\n")) {
		t.Fatalf("the message does not end with CRLF")
	}
	for i, line := range bytes.Split(data, []byte("\r\n")) {
		if bytes.ContainsAny(line, "\r\n") {
			t.Fatalf("line %d holds a bare CR or LF: %q", i+1, line)
		}
		if len(line) > 998 {
			t.Fatalf("line %d is %d bytes long", i+1, len(line))
		}
	}
}

func TestMessageBytes(t *testing.T) {
	date := time.Date(2026, 3, 1, 12, 30, 45, 0, time.FixedZone("CET", 3600))
	m := &Message{
		From:    "WiseHosting <noreply@example.com>",
		To:      []string{"ops@example.com", "Jane Doe <jane@example.org>"},
		Subject: "[WiseHosting] ❌ Deployment failed — shop",
		Text:    "Deployment failed.\n.leading dot\r\nError: build failed =\n",
		HTML:    "<p>Deployment <b>failed</b>.</p>\n" + strings.Repeat("x", 200) + "\n",
		Date:    date,
		Headers: map[string]string{"auto-submitted": "auto-generated", "X-WiseHosting-Event": "deployment.failed"},
	}
	data, p := parse(t, m)
	h := p.Header
	checks := []struct{ name, got, want string }{
		{"Date", h.Get("Date"), "Sun, 01 Mar 2026 12:30:45 +0100"},
		{"From", h.Get("From"), `"WiseHosting" <noreply@example.com>`},
		{"To", h.Get("To"), `<ops@example.com>, "Jane Doe" <jane@example.org>`},
		{"Subject", p.Subject, "[WiseHosting] ❌ Deployment failed — shop"},
		{"MIME-Version", h.Get("MIME-Version"), "1.0"},
		{"Auto-Submitted", h.Get("Auto-Submitted"), "auto-generated"},
		{"X-Wisehosting-Event", h.Get("X-Wisehosting-Event"), "deployment.failed"},
		{"Text", p.Text, "Deployment failed.\r\n.leading dot\r\nError: build failed =\r\n"},
		{"HTML", p.HTML, "<p>Deployment <b>failed</b>.</p>\r\n" + strings.Repeat("x", 200) + "\r\n"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "multipart/alternative; boundary=") {
		t.Errorf("Content-Type = %q", ct)
	}
	id := h.Get("Message-ID")
	if !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@example.com>") || checkMessageID(id) != nil {
		t.Errorf("Message-ID = %q", id)
	}
	if !bytes.Contains(data, []byte("Subject: =?utf-8?b?")) {
		t.Errorf("the subject is not encoded:\n%s", data)
	}
	// The text part comes first: it is the fallback.
	if bytes.Index(data, []byte("text/plain")) > bytes.Index(data, []byte("text/html")) {
		t.Error("text/html comes before text/plain")
	}
	if !bytes.Contains(data, []byte("Content-Transfer-Encoding: quoted-printable")) {
		t.Error("no quoted-printable part")
	}
	// Two renderings differ in Message-ID and boundary only.
	again, _ := m.Bytes()
	if bytes.Equal(again, data) {
		t.Error("two renderings are byte-equal: the Message-ID or the boundary is not random")
	}
}

func TestMessageSinglePart(t *testing.T) {
	tests := []struct {
		name     string
		text     string
		html     string
		wantType string
	}{
		{"text only", "hello\nworld", "", "text/plain; charset=utf-8"},
		{"html only", "", "<p>hello</p>", "text/html; charset=utf-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &Message{From: "a@example.com", To: []string{"b@example.com"}, Subject: "plain subject", Text: tt.text, HTML: tt.html}
			data, p := parse(t, m)
			if got := p.Header.Get("Content-Type"); got != tt.wantType {
				t.Errorf("Content-Type = %q, want %q", got, tt.wantType)
			}
			if !bytes.Contains(data, []byte("\r\nSubject: plain subject\r\n")) {
				t.Errorf("an ASCII subject is not left as it is:\n%s", data)
			}
			want := strings.ReplaceAll(tt.text+tt.html, "\n", "\r\n")
			if got := p.Text + p.HTML; got != want {
				t.Errorf("body %q, want %q", got, want)
			}
		})
	}
}

func TestSubjectEncoding(t *testing.T) {
	tests := []struct {
		in      string
		raw     string // the header text, when it is fixed; "" to skip
		decoded string
	}{
		{"Plain subject", "Plain subject", "Plain subject"},
		{"  padded  ", "padded", "padded"},
		{"Grüße", "=?utf-8?b?R3LDvMOfZQ==?=", "Grüße"},
		{"looks =?utf-8?q?encoded?=", "", "looks =?utf-8?q?encoded?="},
		{"tab\there", "", "tab\there"},
		{strings.Repeat("long ascii words ", 20), "", strings.TrimSpace(strings.Repeat("long ascii words ", 20))},
		{strings.Repeat("ünïcödé ", 30), "", strings.TrimSpace(strings.Repeat("ünïcödé ", 30))},
		{strings.Repeat("🔥", 100), "", strings.Repeat("🔥", 100)},
		{strings.Repeat("0", MaxSubject), "", strings.Repeat("0", MaxSubject)}, // no white space to fold at: encoded
		{"a " + strings.Repeat("0", maxWord), "a " + strings.Repeat("0", maxWord), "a " + strings.Repeat("0", maxWord)},
		{"", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			raw, err := encodeSubject(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if tt.raw != "" && raw != tt.raw {
				t.Errorf("encoded as %q, want %q", raw, tt.raw)
			}
			m := &Message{From: "a@example.com", To: []string{"b@example.com"}, Subject: tt.in, Text: "x"}
			data, p := parse(t, m)
			if p.Subject != tt.decoded {
				t.Errorf("decodes as %q, want %q", p.Subject, tt.decoded)
			}
			// Folded header lines stay short when there is white space
			// to fold at.
			head, _, _ := bytes.Cut(data, []byte("\r\n\r\n"))
			for _, line := range bytes.Split(head, []byte("\r\n")) {
				if len(line) > foldAt && bytes.ContainsAny(line[len("Subject: "):], " \t") {
					t.Errorf("header line of %d bytes: %q", len(line), line)
				}
			}
		})
	}
}

func TestMessageErrors(t *testing.T) {
	ok := func() *Message {
		return &Message{From: "a@example.com", To: []string{"b@example.com"}, Subject: "s", Text: "t"}
	}
	tests := []struct {
		name   string
		change func(m *Message)
		want   string
	}{
		{"no from", func(m *Message) { m.From = "" }, "from: the address is empty"},
		{"injected from", func(m *Message) { m.From = "a@example.com\r\nBcc: x@example.com" }, "from: the address"},
		{"no to", func(m *Message) { m.To = nil }, "at least one recipient"},
		{"injected to", func(m *Message) { m.To = []string{"b@example.com\nBcc: x@example.com"} }, "to[0]: the address"},
		{"bad second to", func(m *Message) { m.To = []string{"b@example.com", "nope"} }, "to[1]:"},
		{"duplicate to", func(m *Message) { m.To = []string{"b@example.com", "B <B@EXAMPLE.COM>"} }, "listed twice"},
		{"too many to", func(m *Message) {
			m.To = nil
			for i := range MaxRecipients + 1 {
				m.To = append(m.To, "r"+strings.Repeat("x", i%10)+string(rune('a'+i%26))+string(rune('a'+i/26))+"@example.com")
			}
		}, "at most 100 recipients"},
		{"subject CRLF", func(m *Message) { m.Subject = "hi\r\nBcc: x@example.com" }, "subject: holds a line break"},
		{"subject LF", func(m *Message) { m.Subject = "hi\nthere" }, "subject: holds a line break"},
		{"subject NUL", func(m *Message) { m.Subject = "hi\x00" }, "subject: holds a control character"},
		{"subject bad UTF-8", func(m *Message) { m.Subject = "hi\xff" }, "subject: not valid UTF-8"},
		{"subject long", func(m *Message) { m.Subject = strings.Repeat("s", MaxSubject+1) }, "subject: longer"},
		{"no body", func(m *Message) { m.Text = "" }, "no body"},
		{"huge body", func(m *Message) { m.HTML = strings.Repeat("h", MaxBody+1) }, "longer than"},
		{"bad message id", func(m *Message) { m.MessageID = "<a b@c>" }, "message id"},
		{"message id without @", func(m *Message) { m.MessageID = "<abc>" }, "message id"},
		{"header CRLF", func(m *Message) { m.Headers = map[string]string{"X-A": "v\r\nBcc: x@example.com"} }, "line break"},
		{"header LF", func(m *Message) { m.Headers = map[string]string{"X-A": "v\nBcc: x@example.com"} }, "line break"},
		{"header non-ASCII", func(m *Message) { m.Headers = map[string]string{"X-A": "ü"} }, "printable ASCII"},
		{"header name colon", func(m *Message) { m.Headers = map[string]string{"X-A: b": "v"} }, "not a header name"},
		{"header name space", func(m *Message) { m.Headers = map[string]string{"X A": "v"} }, "not a header name"},
		{"header bcc", func(m *Message) { m.Headers = map[string]string{"bcc": "x@example.com"} }, "refused"},
		{"header content-type", func(m *Message) { m.Headers = map[string]string{"Content-Type": "text/html"} }, "refused"},
		{"header twice", func(m *Message) { m.Headers = map[string]string{"X-A": "1", "x-a": "2"} }, "set twice"},
		{"header empty", func(m *Message) { m.Headers = map[string]string{"X-A": " "} }, "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := ok()
			tt.change(m)
			data, err := m.Bytes()
			if err == nil {
				t.Fatalf("accepted:\n%s", data)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q, want it to mention %q", err, tt.want)
			}
		})
	}
	if _, err := ok().Bytes(); err != nil {
		t.Fatalf("the base message: %v", err)
	}
}

func TestMessageIDGiven(t *testing.T) {
	m := &Message{From: "a@example.com", To: []string{"b@example.com"}, Text: "t", MessageID: "<evt-1.wisehosting@example.com>"}
	_, p := parse(t, m)
	if got := p.Header.Get("Message-ID"); got != m.MessageID {
		t.Fatalf("Message-ID = %q", got)
	}
}

func TestWriteHeaderFolding(t *testing.T) {
	tests := []struct {
		value string
		lines int
	}{
		{"short", 1},
		{strings.Repeat("word ", 40), 3},
		{strings.Repeat("x", 200), 1}, // nowhere to fold
		{strings.Repeat("x", 100) + " tail", 2},
		{"a" + strings.Repeat(" ", 100) + "b", 2},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		writeHeader(&b, "Subject", tt.value)
		out := b.String()
		lines := strings.Split(strings.TrimSuffix(out, "\r\n"), "\r\n")
		if len(lines) != tt.lines {
			t.Errorf("%q folds into %d lines, want %d: %q", tt.value, len(lines), tt.lines, out)
		}
		for i, l := range lines {
			if strings.TrimSpace(l) == "" {
				t.Errorf("%q: line %d is white space only", tt.value, i)
			}
			if i > 0 && l[0] != ' ' && l[0] != '\t' {
				t.Errorf("%q: continuation line %d does not start with white space", tt.value, i)
			}
		}
		// Unfolding (removing the CRLFs) gives the line back.
		if got := strings.ReplaceAll(out, "\r\n", ""); got != "Subject: "+tt.value {
			t.Errorf("unfolds to %q", got)
		}
	}
}

// FuzzRender checks that any subject and bodies Bytes accepts render into
// a message with clean framing that decodes back to them.
func FuzzRender(f *testing.F) {
	f.Add("Hello", "text\nbody", "<p>html</p>")
	f.Add("Grüße — ❌", ".\n..\n.x", "")
	f.Add("=?utf-8?q?x?=", "", "<b>only html</b>")
	f.Add(strings.Repeat("a b ", 60), strings.Repeat("=", 300), "\r\r\n\n")
	f.Add("x\ty", "trailing space \nline", "\xff\xfe")
	f.Fuzz(func(t *testing.T, subject, text, html string) {
		m := &Message{From: "WiseHosting <noreply@example.com>", To: []string{"ops@example.com"},
			Subject: subject, Text: text, HTML: html}
		data, err := m.Bytes()
		if err != nil {
			return
		}
		checkFraming(t, data)
		p, err := mailtest.Message{Data: data}.Parse()
		if err != nil {
			t.Fatalf("%v\n%q", err, data)
		}
		if want := strings.Trim(subject, " "); p.Subject != want {
			t.Fatalf("subject %q decodes as %q", want, p.Subject)
		}
		norm := func(s string) string {
			s = strings.ToValidUTF8(s, "\uFFFD")
			s = strings.ReplaceAll(s, "\r\n", "\n")
			return strings.ReplaceAll(s, "\r", "\n")
		}
		if got, want := norm(p.Text), norm(text); got != want {
			t.Fatalf("text %q decodes as %q", want, got)
		}
		if got, want := norm(p.HTML), norm(html); got != want {
			t.Fatalf("html %q decodes as %q", want, got)
		}
		// The header holds exactly the fields written, one per name.
		for _, name := range []string{"From", "To", "Date", "Message-Id", "Mime-Version", "Content-Type"} {
			if n := len(p.Header[name]); n != 1 {
				t.Fatalf("%d %s fields", n, name)
			}
		}
	})
}
