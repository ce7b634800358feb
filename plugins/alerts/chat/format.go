package chat

import (
	"encoding/json"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/wisehosting/wisehosting/sdk/event"
	"github.com/wisehosting/wisehosting/sdk/hostname"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// Bounds of a message's parts, in runes. With at most maxDetails detail
// lines, a message is at most maxMessageRunes runes, which is within every
// service's limit (Discord's 2000 characters, counted in UTF-16 units, even
// if every rune were outside the BMP; Telegram's 4096; ntfy's 4096 bytes
// would need all of it to be 4-byte runes, which the ASCII link and
// headline words are not).
const (
	maxAppName      = 64
	maxTypeTitle    = 64
	maxBranch       = 40
	maxCommitLine   = 120
	maxDetailLine   = 200
	maxLink         = 200
	maxDetails      = 3
	maxHeadline     = 2 + 1 + maxTypeTitle + 3 + maxAppName
	maxMessageRunes = maxHeadline + maxDetails*maxDetailLine + maxLink + maxDetails + 1
)

// message is one event as chat text: the seed's compact
// "{emoji} {title} — {app}" headline, up to maxDetails detail lines, and
// the app's link. Each service lays the parts out its own way.
type message struct {
	headline string
	details  []string
	link     string // "" or an absolute http(s) URL
}

// text is the whole message: the headline, the detail lines, the link,
// one per line.
func (m message) text() string {
	lines := append([]string{m.headline}, m.details...)
	if m.link != "" {
		lines = append(lines, m.link)
	}
	return strings.Join(lines, "\n")
}

// body is the message without its headline, for services that show a
// title of their own; "" when there is nothing but the headline.
func (m message) body() string {
	lines := append([]string(nil), m.details...)
	if m.link != "" {
		lines = append(lines, m.link)
	}
	return strings.Join(lines, "\n")
}

// appData is the part of an event's data the formatter uses (the fields
// of event.AppData). It is read field by field: a field of the wrong type
// is left out rather than losing the whole message.
type appData struct {
	appName, subdomain, url                       string
	commitSHA, commitMessage, branch, err, reason string
	deploymentID, restartCount                    int64
	value, threshold                              float64
}

func decodeData(raw []byte) appData {
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) != nil {
		return appData{}
	}
	str := func(k string) string {
		var s string
		_ = json.Unmarshal(fields[k], &s)
		return s
	}
	num := func(k string) float64 {
		var f float64
		if json.Unmarshal(fields[k], &f) != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return 0
		}
		return f
	}
	integer := func(k string) int64 {
		var n int64
		_ = json.Unmarshal(fields[k], &n)
		return n
	}
	return appData{
		appName: str("app_name"), subdomain: str("subdomain"), url: str("url"),
		commitSHA: str("commit_sha"), commitMessage: str("commit_message"), branch: str("branch"),
		err: str("error"), reason: str("reason"),
		deploymentID: integer("deployment_id"), restartCount: integer("restart_count"),
		value: num("value"), threshold: num("threshold"),
	}
}

// formatMessage renders an event (the seed's formatShoutrrrMessage).
func formatMessage(ev *pluginv1.Event) message {
	typ := ev.GetType()
	d := decodeData(ev.GetDataJson())
	headline := eventEmoji(typ) + " " + eventTitle(typ)
	if app := clean(d.appName, maxAppName); app != "" {
		headline += " — " + app
	}
	m := message{headline: headline, link: appLink(d)}
	add := func(line string) {
		if line = clean(line, maxDetailLine); line != "" && len(m.details) < maxDetails {
			m.details = append(m.details, line)
		}
	}
	withPrefix := func(prefix, s string) string {
		if s = firstLine(s); s == "" {
			return ""
		}
		return prefix + s
	}

	switch typ {
	case event.DeploymentSucceeded:
		add(commitLine(d))
	case event.DeploymentFailed:
		add(commitLine(d))
		add(withPrefix("Error: ", d.err))
	case event.AppStopped, event.AppViolation:
		add(withPrefix("Reason: ", d.reason))
		add(withPrefix("Error: ", d.err))
	case event.AppCrashloop:
		switch {
		case d.restartCount == 1:
			add("Restarted once")
		case d.restartCount > 1:
			add("Restarted " + strconv.FormatInt(d.restartCount, 10) + " times")
		}
		add(withPrefix("Reason: ", d.reason))
	case event.AppCPU, event.AppMemory, event.AppNetwork, event.AppDisk,
		event.AppCPUResolved, event.AppMemoryResolved, event.AppNetworkResolved, event.AppDiskResolved:
		if line := metricLine(typ, d); line != "" {
			add(line)
		} else {
			add(firstLine(d.reason))
		}
	case event.AppOffline:
		if d.value > 0 {
			add("No heartbeat from its worker for " + (time.Duration(d.value * float64(time.Second))).Round(time.Second).String())
		} else {
			add(firstLine(d.reason))
		}
	case event.AppOfflineResolved, event.AccountLoginNewDevice:
	case event.WebhookTest:
		add("A test message from WiseHosting: this chat target works.")
	default:
		add(withPrefix("Reason: ", d.reason))
		add(withPrefix("Error: ", d.err))
	}
	return m
}

// eventEmoji is the emoji of an event type (the seed's closed table);
// types outside the catalogue get a generic one.
func eventEmoji(typ string) string {
	switch typ {
	case event.DeploymentSucceeded:
		return "✅"
	case event.DeploymentFailed:
		return "❌"
	case event.AppStopped:
		return "⏹️"
	case event.AppViolation:
		return "🚫"
	case event.AppCrashloop:
		return "🔁"
	case event.AppCPU:
		return "🔥"
	case event.AppMemory:
		return "🧠"
	case event.AppNetwork:
		return "🌐"
	case event.AppDisk:
		return "💾"
	case event.AppOffline:
		return "📴"
	case event.AppCPUResolved, event.AppMemoryResolved, event.AppNetworkResolved, event.AppDiskResolved, event.AppOfflineResolved:
		return "🟢"
	case event.AccountLoginNewDevice:
		return "🔐"
	case event.WebhookTest:
		return "🔔"
	}
	return "📣"
}

// eventTitle is the title of an event type (the seed's closed table);
// types outside the catalogue are shown as they are, cleaned.
func eventTitle(typ string) string {
	switch typ {
	case event.DeploymentSucceeded:
		return "Deployment succeeded"
	case event.DeploymentFailed:
		return "Deployment failed"
	case event.AppStopped:
		return "App stopped"
	case event.AppViolation:
		return "Limit violated"
	case event.AppCrashloop:
		return "App crash-looping"
	case event.AppCPU:
		return "CPU high"
	case event.AppMemory:
		return "Memory high"
	case event.AppNetwork:
		return "Network high"
	case event.AppDisk:
		return "Disk I/O high"
	case event.AppOffline:
		return "App offline"
	case event.AppCPUResolved:
		return "CPU back to normal"
	case event.AppMemoryResolved:
		return "Memory back to normal"
	case event.AppNetworkResolved:
		return "Network back to normal"
	case event.AppDiskResolved:
		return "Disk I/O back to normal"
	case event.AppOfflineResolved:
		return "App back online"
	case event.AccountLoginNewDevice:
		return "New device signed in"
	case event.WebhookTest:
		return "Test notification"
	}
	if t := clean(typ, maxTypeTitle); t != "" {
		return t
	}
	return "Event"
}

// metricLine is "CPU at 97.5% (threshold 90%)" for a metric alert or its
// resolution; "" when the event carries neither value nor threshold.
func metricLine(typ string, d appData) string {
	if d.value == 0 && d.threshold == 0 {
		return ""
	}
	var name, unit string
	switch strings.TrimSuffix(typ, ".resolved") {
	case event.AppCPU:
		name, unit = "CPU", "%"
	case event.AppMemory:
		name, unit = "Memory", "%"
	case event.AppNetwork:
		name, unit = "Network", " Mbit/s"
	case event.AppDisk:
		name, unit = "Disk I/O", " MB/s"
	default:
		return ""
	}
	line := name + " at " + number(d.value) + unit
	if d.threshold != 0 {
		line += " (threshold " + number(d.threshold) + unit + ")"
	}
	return line
}

// number formats v with at most one decimal: 97.5, 90, 0.1.
func number(v float64) string {
	r := math.Round(v*10) / 10
	if r == 0 {
		r = 0 // no "-0"
	}
	return strconv.FormatFloat(r, 'f', -1, 64)
}

// commitLine is "abc1234 on main: First line of the message", as much of
// it as the event has; "Deployment #42" when it has no commit; "" when it
// has neither.
func commitLine(d appData) string {
	sha := short(d.commitSHA)
	msg := clean(firstLine(d.commitMessage), maxCommitLine)
	branch := clean(d.branch, maxBranch)
	if sha == "" && msg == "" {
		switch {
		case d.deploymentID > 0 && branch != "":
			return "Deployment #" + strconv.FormatInt(d.deploymentID, 10) + " of " + branch
		case d.deploymentID > 0:
			return "Deployment #" + strconv.FormatInt(d.deploymentID, 10)
		case branch != "":
			return "Branch " + branch
		}
		return ""
	}
	line := "Commit"
	if sha != "" {
		line += " " + sha
	}
	if branch != "" {
		line += " on " + branch
	}
	if msg != "" {
		line += ": " + msg
	}
	return line
}

// short is the 7-character prefix of a commit SHA, cleaned.
func short(sha string) string {
	sha = clean(sha, 40)
	if utf8.RuneCountInString(sha) > 7 {
		sha = string([]rune(sha)[:7])
	}
	return strings.TrimRight(sha, "…")
}

// firstLine is the first line of s that is not blank, trimmed: a
// multi-line commit message becomes its subject line.
func firstLine(s string) string {
	for line := range strings.Lines(s) {
		line = strings.TrimSpace(strings.TrimRight(line, "\r\n"))
		if i := strings.IndexByte(line, '\r'); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if line != "" {
			return line
		}
	}
	return ""
}

// appLink is the link line: data.url when it is an absolute http(s) URL
// without credentials, else https://{subdomain} when subdomain is a full
// host name; "" otherwise, and when the link would be longer than maxLink
// (a cut link is a broken one).
func appLink(d appData) string {
	if u, err := url.Parse(d.url); err == nil && (u.Scheme == "http" || u.Scheme == "https") &&
		u.Hostname() != "" && u.User == nil && len(d.url) <= maxLink && printableASCII(d.url) {
		return d.url
	}
	if d.subdomain != "" && hostname.Valid(d.subdomain) == nil && len("https://")+len(d.subdomain) <= maxLink {
		return "https://" + d.subdomain
	}
	return ""
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// clean makes s fit on one chat line: only its first line, credentials in
// URLs (scheme://user:password@host) replaced, control and format
// characters dropped, white space collapsed, at most max runes ("…" when
// cut).
func clean(s string, max int) string {
	s = firstLine(strings.ToValidUTF8(s, "\uFFFD"))
	s = stripUserinfo(s)
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\u2028' || r == '\u2029':
			return ' '
		case unicode.IsControl(r), unicode.Is(unicode.Cf, r) && r != '\u200d':
			// Cf holds the bidi overrides; ZWJ stays, emoji sequences need it.
			return -1
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) > max {
		s = string([]rune(s)[:max-1]) + "…"
	}
	return s
}

// stripUserinfo replaces the user info of every scheme://user:pw@host in s:
// an error quoting a git remote must not carry its password into a chat.
func stripUserinfo(s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "://")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i+3])
		s = s[i+3:]
		end := strings.IndexAny(s, "/?#\\ \t\"'<>")
		if end < 0 {
			end = len(s)
		}
		if at := strings.LastIndexByte(s[:end], '@'); at >= 0 {
			b.WriteString("[redacted]@")
			s = s[at+1:]
		}
	}
}
