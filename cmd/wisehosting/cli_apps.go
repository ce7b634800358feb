package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wisehosting/wisehosting/core/cliclient"
)

const appsUsage = `usage:
  wisehosting apps list [-json]
  wisehosting apps info APP [-json]
  wisehosting apps create [NAME] -repo URL [-branch B] [-build CMD] [-run CMD] [-dockerfile F]
                          [-port N] [-env K=V]... [-deploy [-no-wait] [-timeout 15m]]
  wisehosting apps deploy APP [-branch B] [-commit SHA] [-no-wait] [-timeout 15m]
  wisehosting apps deployments APP [-limit N]
  wisehosting apps logs APP... [-f] [-tail N]
  wisehosting apps env APP                   list the env vars, as KEY=VALUE lines
  wisehosting apps env set APP K=V [K=V...]
  wisehosting apps env rm APP K [K...]
  wisehosting apps domains list APP
  wisehosting apps domains add APP HOST      prints the DNS record that proves the domain
  wisehosting apps domains verify ID
  wisehosting apps domains rm ID
  wisehosting apps start|stop|restart APP [-no-wait] [-timeout 15m]
  wisehosting apps delete APP [-hard] [-yes]

APP is an app's name or UUID. Deploys, restarts, starts and stops wait for
the outcome (build log on stdout, status changes on stderr) unless -no-wait;
Ctrl-C stops waiting, not the deployment. Every command takes -core URL (see
'wisehosting login -h'); $WISEHOSTING_TOKEN overrides the stored token.`

// defaultWait bounds how long a command waits for a deployment or a job.
const defaultWait = 15 * time.Minute

func (c *cli) apps(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageErr("%s", appsUsage)
	}
	rest := args[1:]
	switch args[0] {
	case "list", "ls":
		return c.appsList(ctx, rest)
	case "info", "show":
		return c.appsInfo(ctx, rest)
	case "create":
		return c.appsCreate(ctx, rest)
	case "deploy":
		return c.appsDeploy(ctx, rest)
	case "deployments":
		return c.appsDeployments(ctx, rest)
	case "logs":
		return c.appsLogs(ctx, rest)
	case "env":
		return c.appsEnv(ctx, rest)
	case "domains":
		return c.appsDomains(ctx, rest)
	case "start", "stop", "restart":
		return c.appsAction(ctx, args[0], rest)
	case "delete", "rm":
		return c.appsDelete(ctx, rest)
	case "help", "-h", "-help", "--help":
		fmt.Fprintln(c.stdout, appsUsage)
		return nil
	}
	return usageErr("unknown apps command %q\n%s", args[0], appsUsage)
}

// parse parses interspersed flags and checks that between min and max
// positional arguments remain (max < 0: no limit).
func (c *cli) parse(fs *flag.FlagSet, args []string, minArgs, maxArgs int, what string) ([]string, error) {
	fs.Usage = func() { fmt.Fprintln(c.stderr, appsUsage) }
	if err := parseInterspersed(fs, args); err != nil {
		return nil, err
	}
	n := fs.NArg()
	if n < minArgs || (maxArgs >= 0 && n > maxArgs) {
		return nil, usageErr("%s\n%s", what, appsUsage)
	}
	return fs.Args(), nil
}

// waitFlags adds -no-wait and -timeout.
func waitFlags(fs *flag.FlagSet) (noWait *bool, timeout *time.Duration) {
	noWait = fs.Bool("no-wait", false, "return once the request is accepted")
	timeout = fs.Duration("timeout", defaultWait, "how long to wait for the outcome")
	return noWait, timeout
}

func (c *cli) appsList(ctx context.Context, args []string) error {
	fs, core := c.flags("apps list")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := c.parse(fs, args, 0, 0, "apps list takes no arguments"); err != nil {
		return err
	}
	cl, err := c.client(*core)
	if err != nil {
		return err
	}
	apps, err := cl.ListApps(ctx)
	if err != nil {
		return failed(err, "list apps")
	}
	if *asJSON {
		if apps == nil {
			apps = []*cliclient.App{}
		}
		return c.printJSON(apps)
	}
	if len(apps) == 0 {
		fmt.Fprintln(c.stderr, "no apps yet: create one with 'wisehosting apps create -repo URL -deploy'")
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATUS\tURL\tCPU\tMEM\tUPDATED")
	for _, a := range apps {
		cpu, mem := "-", "-"
		if st := a.Stats; st != nil {
			cpu = strconv.FormatFloat(st.CPUPercent, 'f', 1, 64) + "%"
			mem = humanBytes(st.MemBytes)
			if st.MemLimit > 0 {
				mem += "/" + humanBytes(st.MemLimit)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.Name, a.Status, orDash(a.URL), cpu, mem, c.ago(a.UpdatedAt.Time))
	}
	return tw.Flush()
}

func (c *cli) appsInfo(ctx context.Context, args []string) error {
	fs, core := c.flags("apps info")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := c.parse(fs, args, 1, 1, "apps info: give one APP")
	if err != nil {
		return err
	}
	cl, err := c.client(*core)
	if err != nil {
		return err
	}
	a, err := cl.GetApp(ctx, pos[0])
	if err != nil {
		return failed(err, "app %s", pos[0])
	}
	if *asJSON {
		return c.printJSON(a)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, orDash(v)) }
	row("name", a.Name)
	row("uuid", a.UUID)
	row("status", a.Status)
	row("url", a.URL)
	row("runtime", a.Runtime)
	row("repository", a.GitRepo)
	row("branch", a.GitBranch)
	row("commit", a.CommitSHA)
	row("build command", a.BuildCommand)
	row("run command", a.RunCommand)
	row("dockerfile", a.Dockerfile)
	row("port", strconv.Itoa(a.Port))
	row("auto deploy", strconv.FormatBool(a.AutoDeploy))
	row("restarts", strconv.FormatInt(a.RestartCount, 10))
	if a.ViolationReason != "" {
		row("violation", a.ViolationReason)
	}
	if st := a.Stats; st != nil {
		row("cpu", strconv.FormatFloat(st.CPUPercent, 'f', 1, 64)+"%")
		row("memory", humanBytes(st.MemBytes)+" of "+humanBytes(st.MemLimit))
		row("network", strconv.FormatFloat(st.NetMbps, 'f', 2, 64)+" Mbit/s")
	}
	row("created", c.stamp(a.CreatedAt.Time))
	row("updated", c.stamp(a.UpdatedAt.Time))
	return tw.Flush()
}

// envFlag collects repeated -env K=V.
type envFlag map[string]string

func (e envFlag) String() string { return "" }

func (e envFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", s)
	}
	e[k] = v
	return nil
}

func (c *cli) appsCreate(ctx context.Context, args []string) error {
	fs, core := c.flags("apps create")
	var req cliclient.CreateApp
	fs.StringVar(&req.GitRepo, "repo", "", "git repository URL (required)")
	fs.StringVar(&req.GitBranch, "branch", "", "branch to deploy (default: the server's, main)")
	fs.StringVar(&req.BuildCommand, "build", "", "build command")
	fs.StringVar(&req.RunCommand, "run", "", "run command")
	fs.StringVar(&req.Dockerfile, "dockerfile", "", "Dockerfile path in the repository")
	fs.IntVar(&req.Port, "port", 0, "port the app listens on")
	env := envFlag{}
	fs.Var(env, "env", "an env var KEY=VALUE (repeatable)")
	fs.BoolVar(&req.Deploy, "deploy", false, "deploy it at once")
	noWait, timeout := waitFlags(fs)
	pos, err := c.parse(fs, args, 0, 1, "apps create: at most one NAME")
	if err != nil {
		return err
	}
	if req.GitRepo == "" {
		return usageErr("apps create: -repo is required\n%s", appsUsage)
	}
	if req.Port < 0 || req.Port > 65535 {
		return usageErr("apps create: -port %d: want 1..65535", req.Port)
	}
	if len(pos) == 1 {
		req.Name = pos[0]
	}
	if len(env) > 0 {
		req.Env = env
	}
	cl, err := c.client(*core)
	if err != nil {
		return err
	}
	created, err := cl.CreateApp(ctx, req)
	if err != nil {
		if req.Name != "" {
			return failed(err, "create app %s", req.Name)
		}
		return failed(err, "create app")
	}
	a := created.App
	fmt.Fprintf(c.stdout, "created app %s: %s\n", a.Name, orDash(a.URL))
	if created.Deployment == nil {
		if !req.Deploy {
			fmt.Fprintf(c.stderr, "deploy it with: wisehosting apps deploy %s\n", a.Name)
		}
		return nil
	}
	if *noWait {
		c.started(a.Name, created.Deployment)
		return nil
	}
	return c.waitDeployment(ctx, cl, a.Name, a.URL, created.Deployment, *timeout)
}

func (c *cli) appsDeploy(ctx context.Context, args []string) error {
	fs, core := c.flags("apps deploy")
	var req cliclient.Deploy
	fs.StringVar(&req.Branch, "branch", "", "branch to deploy (default: the app's)")
	fs.StringVar(&req.CommitSHA, "commit", "", "commit to deploy (default: the branch's head)")
	noWait, timeout := waitFlags(fs)
	pos, err := c.parse(fs, args, 1, 1, "apps deploy: give one APP")
	if err != nil {
		return err
	}
	cl, err := c.client(*core)
	if err != nil {
		return err
	}
	acc, err := cl.DeployApp(ctx, pos[0], req)
	if err != nil {
		return failed(err, "deploy %s", pos[0])
	}
	if *noWait {
		c.started(pos[0], acc.Deployment)
		return nil
	}
	return c.waitDeployment(ctx, cl, pos[0], "", acc.Deployment, *timeout)
}

// started says a deployment was accepted, for -no-wait.
func (c *cli) started(app string, d *cliclient.Deployment) {
	fmt.Fprintf(c.stdout, "deployment %s of %s started (%s); follow it with: wisehosting apps deployments %s\n", d.ID, app, d.Status, app)
}

// buildLog prints a build log as it grows, marking what the cap dropped.
type buildLog struct {
	w           io.Writer
	atLineStart bool
}

func (b *buildLog) add(text string, gap bool) {
	if gap {
		if !b.atLineStart {
			fmt.Fprintln(b.w)
		}
		fmt.Fprintln(b.w, strings.Trim(cliclient.TruncationMarker, "\n"))
		b.atLineStart = true
	}
	if text == "" {
		return
	}
	io.WriteString(b.w, text)
	b.atLineStart = strings.HasSuffix(text, "\n")
}

// waitDeployment follows a deployment to its end: status changes on
// stderr, the build log on stdout. It fails when the deployment does, and
// when the wait ends first (Ctrl-C, timeout), saying that the deployment
// goes on.
func (c *cli) waitDeployment(ctx context.Context, cl *cliclient.Client, app, appURL string, d *cliclient.Deployment, timeout time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	log := &buildLog{w: c.stdout, atLineStart: true}
	final, err := cl.WatchDeployment(wctx, d.ID, cliclient.WatchOptions{
		Every:    c.every,
		OnStatus: func(s string) { fmt.Fprintf(c.stderr, "deployment %s of %s: %s\n", d.ID, app, s) },
		OnLog:    log.add,
	})
	if !log.atLineStart {
		fmt.Fprintln(c.stdout)
	}
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("stopped waiting: deployment %s of %s goes on (see 'wisehosting apps deployments %s')", d.ID, app, app)
	case errors.Is(err, context.DeadlineExceeded) && wctx.Err() != nil:
		return fmt.Errorf("deployment %s of %s did not finish within %s; it goes on (see 'wisehosting apps deployments %s')", d.ID, app, timeout, app)
	case err != nil:
		return failed(err, "follow deployment %s of %s", d.ID, app)
	}
	if final.Status != cliclient.DeploymentSucceeded {
		if final.Error != "" {
			return fmt.Errorf("deployment %s of %s %s: %s", d.ID, app, final.Status, final.Error)
		}
		return fmt.Errorf("deployment %s of %s %s", d.ID, app, final.Status)
	}
	if appURL == "" {
		if a, err := cl.GetApp(ctx, app); err == nil {
			appURL = a.URL
		}
	}
	fmt.Fprintf(c.stdout, "deployed %s: %s\n", app, orDash(appURL))
	return nil
}

func (c *cli) appsDeployments(ctx context.Context, args []string) error {
	fs, core := c.flags("apps deployments")
	limit := fs.Int("limit", 10, "how many, newest first")
	pos, err := c.parse(fs, args, 1, 1, "apps deployments: give one APP")
	if err != nil {
		return err
	}
	if *limit < 1 {
		return usageErr("apps deployments: -limit must be at least 1")
	}
	cl, err := c.client(*core)
	if err != nil {
		return err
	}
	ds, err := cl.ListDeployments(ctx, pos[0], *limit)
	if err != nil {
		return failed(err, "deployments of %s", pos[0])
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tTRIGGER\tBRANCH\tCOMMIT\tCREATED\tERROR")
	for _, d := range ds {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.Status, orDash(d.Trigger), orDash(d.Branch),
			orDash(shortSHA(d.CommitSHA)), c.ago(d.CreatedAt.Time), orDash(oneLine(d.Error, 60)))
	}
	return tw.Flush()
}

func (c *cli) appsLogs(ctx context.Context, args []string) error {
	fs, core := c.flags("apps logs")
	follow := fs.Bool("f", false, "follow: stream new lines until Ctrl-C")
	tail := fs.Int("tail", 100, "how many of the latest lines to show first")
	refs, err := c.parse(fs, args, 1, -1, "apps logs: give at least one APP")
	if err != nil {
		return err
	}
	if *tail < 0 {
		return usageErr("apps logs: -tail must not be negative")
	}
	cl, err := c.client(*core)
	if err != nil {
		return err
	}
	if !*follow {
		var all []cliclient.LogLine
		names := map[string]string{}
		for _, ref := range refs {
			lines, err := cl.Logs(ctx, ref, *tail)
			if err != nil {
				return failed(err, "logs of %s", ref)
			}
			for _, l := range lines {
				names[l.App] = ref
			}
			all = append(all, lines...)
		}
		if len(refs) == 1 {
			names = nil
		} else {
			sort.SliceStable(all, func(i, j int) bool { return all[i].TS.Before(all[j].TS.Time) })
		}
		for _, l := range all {
			c.printLogLine(l, names)
		}
		return nil
	}
	var names map[string]string
	if len(refs) > 1 {
		names = map[string]string{}
		for _, ref := range refs {
			a, err := cl.GetApp(ctx, ref)
			if err != nil {
				return failed(err, "logs of %s", ref)
			}
			names[a.UUID] = a.Name
		}
	}
	lines, errc := cl.LogStream(ctx, refs, *tail)
	for l := range lines {
		c.printLogLine(l, names)
	}
	err = <-errc
	switch {
	case ctx.Err() != nil:
		return nil // Ctrl-C: the end the user asked for
	case err != nil:
		return failed(err, "logs of %s", strings.Join(refs, ", "))
	}
	fmt.Fprintln(c.stderr, "the server ended the log stream")
	return nil
}

// printLogLine prints "TIME [APP | ][[stream] ]LINE"; names (UUID → name)
// is nil when one app is shown.
func (c *cli) printLogLine(l cliclient.LogLine, names map[string]string) {
	var b strings.Builder
	if l.TS.IsZero() {
		b.WriteString("-")
	} else {
		b.WriteString(l.TS.In(c.loc).Format(time.RFC3339))
	}
	b.WriteByte(' ')
	if names != nil {
		name := names[l.App]
		if name == "" {
			name = l.App
		}
		b.WriteString(name + " | ")
	}
	if l.Stream != "" && l.Stream != "stdout" {
		b.WriteString("[" + l.Stream + "] ")
	}
	b.WriteString(strings.TrimRight(l.Line, "\r\n"))
	fmt.Fprintln(c.stdout, b.String())
}

func (c *cli) appsEnv(ctx context.Context, args []string) error {
	sub := ""
	if len(args) > 0 && (args[0] == "set" || args[0] == "rm" || args[0] == "unset") {
		sub, args = args[0], args[1:]
	}
	fs, core := c.flags("apps env " + sub)
	var pos []string
	var err error
	switch sub {
	case "":
		pos, err = c.parse(fs, args, 1, 1, "apps env: give one APP (or: env set APP K=V..., env rm APP K...)")
	case "set":
		pos, err = c.parse(fs, args, 2, -1, "apps env set: give APP and at least one KEY=VALUE")
	default:
		pos, err = c.parse(fs, args, 2, -1, "apps env rm: give APP and at least one KEY")
	}
	if err != nil {
		return err
	}
	app := pos[0]
	type kv struct{ k, v string }
	var sets []kv
	if sub == "set" {
		for _, arg := range pos[1:] {
			k, v, ok := strings.Cut(arg, "=")
			if !ok || k == "" {
				return usageErr("apps env set: want KEY=VALUE, got %q", arg)
			}
			sets = append(sets, kv{k, v})
		}
	}
	cl, err := c.client(*core)
	if err != nil {
		return err
	}
	switch sub {
	case "":
		vars, err := cl.ListEnv(ctx, app)
		if err != nil {
			return failed(err, "env of %s", app)
		}
		slices.SortFunc(vars, func(a, b *cliclient.EnvVar) int { return strings.Compare(a.Key, b.Key) })
		for _, v := range vars {
			fmt.Fprintf(c.stdout, "%s=%s\n", v.Key, v.Value)
		}
		return nil
	case "set":
		note := ""
		for _, s := range sets {
			_, n, err := cl.SetEnv(ctx, app, s.k, s.v)
			if err != nil {
				return failed(err, "set %s on %s", s.k, app)
			}
			note = n
			fmt.Fprintf(c.stdout, "set %s on %s\n", s.k, app)
		}
		if note != "" {
			fmt.Fprintln(c.stderr, note)
		}
		return nil
	}
	note := ""
	for _, k := range pos[1:] {
		n, err := cl.DeleteEnv(ctx, app, k)
		if err != nil {
			return failed(err, "remove %s from %s", k, app)
		}
		note = n
		fmt.Fprintf(c.stdout, "removed %s from %s\n", k, app)
	}
	if note != "" {
		fmt.Fprintln(c.stderr, note)
	}
	return nil
}

func (c *cli) appsDomains(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageErr("apps domains: list, add, verify or rm?\n%s", appsUsage)
	}
	sub, args := args[0], args[1:]
	fs, core := c.flags("apps domains " + sub)
	var pos []string
	var err error
	switch sub {
	case "list", "ls":
		pos, err = c.parse(fs, args, 1, 1, "apps domains list: give one APP")
	case "add":
		pos, err = c.parse(fs, args, 2, 2, "apps domains add: give APP and HOST")
	case "verify":
		pos, err = c.parse(fs, args, 1, 1, "apps domains verify: give the domain's ID (see 'apps domains list APP')")
	case "rm", "delete":
		pos, err = c.parse(fs, args, 1, 1, "apps domains rm: give the domain's ID (see 'apps domains list APP')")
	default:
		return usageErr("unknown apps domains command %q\n%s", sub, appsUsage)
	}
	if err != nil {
		return err
	}
	cl, err := c.client(*core)
	if err != nil {
		return err
	}
	switch sub {
	case "list", "ls":
		ds, err := cl.ListDomains(ctx, pos[0])
		if err != nil {
			return failed(err, "domains of %s", pos[0])
		}
		tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tHOSTNAME\tSTATUS\tVERIFIED")
		for _, d := range ds {
			verified := "-"
			if !d.VerifiedAt.IsZero() {
				verified = c.ago(d.VerifiedAt.Time)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.ID, d.Hostname, d.Status, verified)
		}
		return tw.Flush()
	case "add":
		d, rec, err := cl.AddDomain(ctx, pos[0], pos[1])
		if err != nil {
			return failed(err, "add %s to %s", pos[1], pos[0])
		}
		fmt.Fprintf(c.stdout, "added %s to %s (id %s, %s)\n", d.Hostname, pos[0], d.ID, d.Status)
		if rec != nil {
			fmt.Fprintf(c.stdout, "\nCreate this DNS record:\n\n  %s  %s  %q\n\nthen run: wisehosting apps domains verify %s\n",
				rec.Type, rec.Name, rec.Value, d.ID)
		}
		return nil
	case "verify":
		d, err := cl.VerifyDomain(ctx, cliclient.ID(pos[0]))
		if err != nil {
			return failed(err, "verify domain %s", pos[0])
		}
		fmt.Fprintf(c.stdout, "verified %s (%s)\n", d.Hostname, d.Status)
		return nil
	}
	if err := cl.DeleteDomain(ctx, cliclient.ID(pos[0])); err != nil {
		return failed(err, "remove domain %s", pos[0])
	}
	fmt.Fprintf(c.stdout, "removed domain %s\n", pos[0])
	return nil
}

func (c *cli) appsAction(ctx context.Context, action string, args []string) error {
	fs, core := c.flags("apps " + action)
	noWait, timeout := waitFlags(fs)
	pos, err := c.parse(fs, args, 1, 1, "apps "+action+": give one APP")
	if err != nil {
		return err
	}
	app := pos[0]
	cl, err := c.client(*core)
	if err != nil {
		return err
	}
	call := map[string]func(context.Context, string) (*cliclient.Accepted, error){
		"start": cl.StartApp, "stop": cl.StopApp, "restart": cl.RestartApp,
	}[action]
	acc, err := call(ctx, app)
	if err != nil {
		return failed(err, "%s %s", action, app)
	}
	if acc.Deployment != nil {
		if *noWait {
			c.started(app, acc.Deployment)
			return nil
		}
		return c.waitDeployment(ctx, cl, app, "", acc.Deployment, *timeout)
	}
	if *noWait {
		fmt.Fprintf(c.stdout, "%s of %s requested (job %s, %s)\n", action, app, acc.Job.ID, acc.Job.Status)
		return nil
	}
	return c.waitJob(ctx, cl, action, app, acc.Job, *timeout)
}

// waitJob follows a start or stop job to its end, statuses on stderr.
func (c *cli) waitJob(ctx context.Context, cl *cliclient.Client, action, app string, j *cliclient.Job, timeout time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	final, err := cl.WatchJob(wctx, j.ID, cliclient.WatchOptions{
		Every:    c.every,
		OnStatus: func(s string) { fmt.Fprintf(c.stderr, "%s %s (job %s): %s\n", action, app, j.ID, s) },
	})
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("stopped waiting: the %s of %s (job %s) goes on", action, app, j.ID)
	case errors.Is(err, context.DeadlineExceeded) && wctx.Err() != nil:
		return fmt.Errorf("the %s of %s (job %s) did not finish within %s; it goes on", action, app, j.ID, timeout)
	case err != nil:
		return failed(err, "follow job %s", j.ID)
	}
	if final.Status != cliclient.JobCompleted {
		if final.Message != "" {
			return fmt.Errorf("%s %s: job %s %s: %s", action, app, j.ID, final.Status, final.Message)
		}
		return fmt.Errorf("%s %s: job %s %s", action, app, j.ID, final.Status)
	}
	past := map[string]string{"start": "started", "stop": "stopped"}[action]
	fmt.Fprintf(c.stdout, "%s %s\n", past, app)
	return nil
}

func (c *cli) appsDelete(ctx context.Context, args []string) error {
	fs, core := c.flags("apps delete")
	hard := fs.Bool("hard", false, "remove it for good, with its deployments and logs")
	yes := fs.Bool("yes", false, "do not ask for confirmation")
	pos, err := c.parse(fs, args, 1, 1, "apps delete: give one APP")
	if err != nil {
		return err
	}
	app := pos[0]
	if !*yes && !c.terminal {
		return usageErr("apps delete %s: stdin is not a terminal to confirm at; pass -yes to delete without confirmation", app)
	}
	cl, err := c.client(*core)
	if err != nil {
		return err
	}
	if !*yes {
		what := "It is stopped and its URL stops answering."
		if *hard {
			what = "It is stopped and removed for good, with its deployments, env vars and domains."
		}
		fmt.Fprintf(c.stderr, "Delete app %s? %s\nType its name to confirm: ", app, what)
		answer, err := c.readLine(ctx)
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("delete %s: read the confirmation: %w", app, err)
		}
		if strings.TrimSpace(answer) != app {
			return fmt.Errorf("delete %s: not confirmed; nothing was deleted", app)
		}
	}
	if err := cl.DeleteApp(ctx, app, *hard); err != nil {
		return failed(err, "delete %s", app)
	}
	fmt.Fprintf(c.stdout, "deleted %s\n", app)
	return nil
}

// printJSON prints v indented.
func (c *cli) printJSON(v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// ago is how long before now t was, roughly ("3m ago"); older than two
// days, the date.
func (c *cli) ago(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := c.now().Sub(t)
	switch {
	case d < 0:
		return c.stamp(t)
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s ago"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m ago"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + "h ago"
	}
	return t.In(c.loc).Format("2006-01-02")
}

// stamp formats t in the user's zone.
func (c *cli) stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(c.loc).Format("2006-01-02 15:04:05 MST")
}

// humanBytes formats a size with one decimal in binary units.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + "B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return strconv.FormatFloat(float64(n)/float64(div), 'f', 1, 64) + string("KMGTP"[exp]) + "iB"
}

// shortSHA is a commit's first 8 characters.
func shortSHA(s string) string {
	if len(s) > 8 {
		return s[:8]
	}
	return s
}

// oneLine is s's first line, cut to n characters.
func oneLine(s string, n int) string {
	s, _, _ = strings.Cut(s, "\n")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
