package email

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wisehosting/wisehosting/sdk/event"
	"github.com/wisehosting/wisehosting/sdk/hostname"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// describe returns the emoji and title of an event type; an unknown type
// gets a bell and its name.
func describe(typ string) (emoji, title string) {
	switch typ {
	case event.DeploymentSucceeded:
		return "✅", "Deployment succeeded"
	case event.DeploymentFailed:
		return "❌", "Deployment failed"
	case event.AppStopped:
		return "⏹️", "App stopped"
	case event.AppViolation:
		return "🚫", "Policy violation"
	case event.AppCrashloop:
		return "🔁", "App crash-looping"
	case event.AppCPU:
		return "🔥", "High CPU usage"
	case event.AppMemory:
		return "🧠", "High memory usage"
	case event.AppNetwork:
		return "📶", "High network usage"
	case event.AppDisk:
		return "💾", "High disk usage"
	case event.AppOffline:
		return "🔴", "App offline"
	case event.AppCPUResolved:
		return "🟢", "CPU usage back to normal"
	case event.AppMemoryResolved:
		return "🟢", "Memory usage back to normal"
	case event.AppNetworkResolved:
		return "🟢", "Network usage back to normal"
	case event.AppDiskResolved:
		return "🟢", "Disk usage back to normal"
	case event.AppOfflineResolved:
		return "🟢", "App back online"
	case event.AccountLoginNewDevice:
		return "🔐", "New sign-in from an unknown device"
	case event.WebhookTest:
		return "🧪", "Test notification"
	}
	return "🔔", "Event " + oneLine(typ, 60)
}

// Limits of what a mail quotes from an event.
const (
	maxApp      = 80   // the app's name
	maxField    = 300  // a one-line value
	maxError    = 4000 // error: multi-line
	maxCommit   = 120  // the commit message's first line
	maxExtra    = 20   // other data fields
	maxFieldKey = 60   // their names
)

// row is one detail of the mail.
type row struct {
	Label, Value string
	// Block renders Value as preformatted text (multi-line).
	Block bool
}

// view is what the templates render.
type view struct {
	Emoji, Title, App string
	Rows              []row
	Link              string // "" when none
	Type, ID, Time    string
}

// composed is one event's mail.
type composed struct {
	subject, text, html string
	at                  time.Time
}

// compose renders ev as a mail: subject (prefix, emoji, title, app), text
// and HTML bodies (tmpl: newHTMLTemplate). now stands in for a missing
// event time.
func compose(ev *pluginv1.Event, prefix string, tmpl *template.Template, now time.Time) (*composed, error) {
	at := now
	if ns := ev.GetTimeUnixNano(); ns != 0 {
		at = time.Unix(0, ns)
	}
	d, err := newData(ev.GetDataJson())
	if err != nil {
		return nil, err
	}
	v := view{Type: oneLine(ev.GetType(), 100), ID: ev.GetId(), Time: at.UTC().Format("2006-01-02 15:04:05 UTC")}
	v.Emoji, v.Title = describe(ev.GetType())
	if name, ok := d.str("app_name"); ok && oneLine(name, maxApp) != "" {
		v.App = oneLine(name, maxApp)
	} else if ev.GetAppId() != 0 {
		v.App = "app #" + strconv.FormatInt(ev.GetAppId(), 10)
	}
	if v.App != "" {
		v.Rows = append(v.Rows, row{Label: "App", Value: v.App})
	}
	if id, ok := d.int("deployment_id"); ok {
		v.Rows = append(v.Rows, row{Label: "Deployment", Value: "#" + strconv.FormatInt(id, 10)})
	}
	if b, ok := d.str("branch"); ok && b != "" {
		v.Rows = append(v.Rows, row{Label: "Branch", Value: oneLine(b, maxField)})
	}
	sha, _ := d.str("commit_sha")
	msg, _ := d.str("commit_message")
	if commit := strings.TrimSpace(shortSHA(sha) + " " + oneLine(firstLine(msg), maxCommit)); commit != "" {
		v.Rows = append(v.Rows, row{Label: "Commit", Value: commit})
	}
	if e, ok := d.str("error"); ok && strings.TrimSpace(e) != "" {
		v.Rows = append(v.Rows, row{Label: "Error", Value: block(e, maxError), Block: true})
	}
	if r, ok := d.str("reason"); ok && r != "" {
		v.Rows = append(v.Rows, row{Label: "Reason", Value: oneLine(r, maxField)})
	}
	value, hasValue := d.num("value")
	threshold, hasThreshold := d.num("threshold")
	switch {
	case hasValue && hasThreshold:
		v.Rows = append(v.Rows, row{Label: "Value", Value: formatNum(value) + " (threshold " + formatNum(threshold) + ")"})
	case hasValue:
		v.Rows = append(v.Rows, row{Label: "Value", Value: formatNum(value)})
	case hasThreshold:
		v.Rows = append(v.Rows, row{Label: "Threshold", Value: formatNum(threshold)})
	}
	if n, ok := d.int("restart_count"); ok {
		v.Rows = append(v.Rows, row{Label: "Restarts", Value: strconv.FormatInt(n, 10)})
	}
	v.Link = d.link()
	v.Rows = append(v.Rows, d.extra()...)

	subject := strings.TrimSpace(prefix + " " + v.Emoji + " " + v.Title)
	if v.App != "" {
		subject += " — " + v.App
	}
	var text, html bytes.Buffer
	writeText(&text, &v)
	if err := tmpl.Execute(&html, &v); err != nil {
		return nil, fmt.Errorf("rendering the mail: %v", err)
	}
	return &composed{subject: subject, text: text.String(), html: html.String(), at: at}, nil
}

// data is an event's data object, read leniently: a field of an
// unexpected type is shown among the other fields rather than failing the
// event.
type data struct {
	fields map[string]json.RawMessage
	used   map[string]bool
}

func newData(raw []byte) (*data, error) {
	d := &data{fields: map[string]json.RawMessage{}, used: map[string]bool{}}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return d, nil
	}
	if raw[0] != '{' {
		return nil, errors.New("the event's data is not a JSON object")
	}
	if err := json.Unmarshal(raw, &d.fields); err != nil {
		return nil, errors.New("the event's data is not a JSON object")
	}
	return d, nil
}

func (d *data) str(key string) (string, bool) {
	raw, ok := d.fields[key]
	if !ok {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	d.used[key] = true
	return s, true
}

func (d *data) num(key string) (float64, bool) {
	raw, ok := d.fields[key]
	if !ok {
		return 0, false
	}
	var f float64
	if json.Unmarshal(raw, &f) != nil {
		return 0, false
	}
	d.used[key] = true
	return f, true
}

func (d *data) int(key string) (int64, bool) {
	raw, ok := d.fields[key]
	if !ok {
		return 0, false
	}
	var n int64
	if json.Unmarshal(raw, &n) != nil {
		return 0, false
	}
	d.used[key] = true
	return n, true
}

// link returns the app's address: data.url when it is an absolute http(s)
// URL, else https://<subdomain> when subdomain is a host name; "" when
// neither.
func (d *data) link() string {
	if raw, ok := d.str("url"); ok {
		if u, err := url.Parse(strings.TrimSpace(raw)); err == nil && (u.Scheme == "http" || u.Scheme == "https") &&
			u.Host != "" && u.User == nil && len(raw) <= 2000 {
			return u.String()
		}
		d.used["url"] = false // shown among the other fields instead
	}
	if sub, ok := d.str("subdomain"); ok {
		if hostname.Valid(sub) == nil {
			return "https://" + sub
		}
		d.used["subdomain"] = false
	}
	return ""
}

// extra returns the data fields not shown otherwise, sorted by name, at
// most maxExtra.
func (d *data) extra() []row {
	keys := make([]string, 0, len(d.fields))
	for k := range d.fields {
		if !d.used[k] {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var rows []row
	for i, k := range keys {
		if i == maxExtra {
			rows = append(rows, row{Label: "…", Value: fmt.Sprintf("%d more fields", len(keys)-maxExtra)})
			break
		}
		raw := d.fields[k]
		var s string
		if json.Unmarshal(raw, &s) != nil {
			var b bytes.Buffer
			if json.Compact(&b, raw) == nil {
				s = b.String()
			} else {
				s = string(raw)
			}
		}
		rows = append(rows, row{Label: oneLine(k, maxFieldKey), Value: oneLine(s, maxField)})
	}
	return rows
}

// shortSHA returns the first 7 characters of a commit SHA, "" when it is
// not hex.
func shortSHA(sha string) string {
	sha = strings.TrimSpace(sha)
	for i := 0; i < len(sha); i++ {
		if c := sha[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return ""
		}
	}
	return sha[:min(7, len(sha))]
}

// firstLine returns the first non-empty line of s.
func firstLine(s string) string {
	for l := range strings.Lines(s) {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}

func formatNum(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// oneLine returns s as one line of at most max bytes: invalid UTF-8
// replaced, control and bidirectional-override characters turned to
// spaces, runs of white space collapsed, cut at a rune boundary with "…".
func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(clean(s)), " ")
	return cut(s, max)
}

// block returns s as preformatted text of at most max bytes: like oneLine,
// but keeping line breaks (as \n) and dropping trailing blank lines.
func block(s string, max int) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(strings.ReplaceAll(clean(l), "\t", "    "), " ")
	}
	return cut(strings.Trim(strings.Join(lines, "\n"), "\n"), max)
}

// clean replaces invalid UTF-8 and turns control characters (C0, DEL,
// C1), line and paragraph separators, and bidirectional controls (which
// can make text read differently from what it is) to spaces.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		switch {
		case r < ' ' || r == 0x7f || r >= 0x80 && r < 0xa0,
			r == '\u2028' || r == '\u2029',
			r >= '\u202a' && r <= '\u202e', r >= '\u2066' && r <= '\u2069', r == '\u200e' || r == '\u200f':
			return ' '
		}
		return r
	}, s)
}

func cut(s string, max int) string {
	if len(s) <= max {
		return s
	}
	n := max - len("…")
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// writeText writes the plain-text body.
func writeText(b *bytes.Buffer, v *view) {
	b.WriteString(v.Emoji + " " + v.Title)
	if v.App != "" {
		b.WriteString(" — " + v.App)
	}
	b.WriteString("\n\n")
	width := 0
	for _, r := range v.Rows {
		if !r.Block {
			width = max(width, utf8.RuneCountInString(r.Label))
		}
	}
	for _, r := range v.Rows {
		if r.Block {
			b.WriteString(r.Label + ":\n")
			for l := range strings.Lines(r.Value) {
				b.WriteString("    " + strings.TrimSuffix(l, "\n") + "\n")
			}
			continue
		}
		pad := width - utf8.RuneCountInString(r.Label)
		b.WriteString(r.Label + ": " + strings.Repeat(" ", pad) + r.Value + "\n")
	}
	if v.Link != "" {
		b.WriteString("\nOpen: " + v.Link + "\n")
	}
	b.WriteString("\nEvent " + v.Type + " at " + v.Time + " (id " + v.ID + ").\n")
	b.WriteString("-- \nSent by the WiseHosting e-mail alert sink.\n")
}

// newHTMLTemplate returns the template of the HTML body; html/template
// escapes every value for where it stands (text, attribute, URL).
func newHTMLTemplate() *template.Template {
	return template.Must(template.New("mail").Parse(htmlSource))
}

// htmlSource is the HTML body: inline styles only, as mail clients drop
// style sheets.
const htmlSource = `<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>{{.Title}}</title></head>
<body style="margin:0;padding:24px;background:#f4f5f7;font-family:-apple-system,BlinkMacSystemFont,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;color:#1f2328;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="max-width:640px;margin:0 auto;background:#ffffff;border:1px solid #d8dee4;border-radius:8px;">
<tr><td style="padding:20px 24px;border-bottom:1px solid #d8dee4;">
<div style="font-size:20px;font-weight:600;">{{.Emoji}} {{.Title}}</div>
{{- if .App}}
<div style="margin-top:4px;font-size:14px;color:#59636e;">{{.App}}</div>
{{- end}}
</td></tr>
<tr><td style="padding:16px 24px;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="font-size:14px;border-collapse:collapse;">
{{- range .Rows}}
<tr>
<td style="padding:6px 12px 6px 0;vertical-align:top;white-space:nowrap;color:#59636e;">{{.Label}}</td>
{{- if .Block}}
<td style="padding:6px 0;"><pre style="margin:0;padding:8px;background:#f6f8fa;border-radius:6px;font-family:SFMono-Regular,Consolas,'Liberation Mono',Menlo,monospace;font-size:12px;white-space:pre-wrap;word-break:break-word;">{{.Value}}</pre></td>
{{- else}}
<td style="padding:6px 0;word-break:break-word;">{{.Value}}</td>
{{- end}}
</tr>
{{- end}}
</table>
{{- if .Link}}
<p style="margin:20px 0 4px;"><a href="{{.Link}}" style="display:inline-block;padding:8px 16px;background:#0969da;color:#ffffff;text-decoration:none;border-radius:6px;font-size:14px;">Open {{.Link}}</a></p>
{{- end}}
</td></tr>
<tr><td style="padding:12px 24px;border-top:1px solid #d8dee4;font-size:12px;color:#59636e;">
Event {{.Type}} at {{.Time}} (id {{.ID}}). Sent by the WiseHosting e-mail alert sink.
</td></tr>
</table>
</body>
</html>
`
